"""Reading a command's output from its SSH channel."""

from __future__ import annotations

import select
import time

import paramiko

from lab.run.backends.base import ready_said


def read_until_ready(chan: paramiko.Channel, deadline: float) -> tuple[bool, bytes] | None:
    """Read a channel's stderr until the command says it is ready at its start barrier
    (True) or ends (False); its stderr so far, less the ready line. None once ``deadline``
    passes. Its stdout stays in the channel for ``read_all``."""
    err = b""
    while True:
        said, rest = ready_said(err)
        if said:
            return True, rest
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(1 << 16)
        if ready_said(err)[0]:
            continue
        if chan.eof_received or chan.closed or chan.exit_status_ready():
            return False, err
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if chan.recv_ready():  # stdout waiting keeps the channel's pipe set: no busy loop
            time.sleep(0.01)
        select.select([chan], [], [], min(remaining, 1.0))


def read_all(chan: paramiko.Channel, deadline: float) -> tuple[bytes, bytes] | None:
    """Read a channel's stdout and stderr until its end; None once ``deadline`` passes."""
    out, err = bytearray(), bytearray()
    while True:
        while chan.recv_ready():
            out += chan.recv(1 << 16)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(1 << 16)
        if (chan.eof_received or chan.closed) and not (
            chan.recv_ready() or chan.recv_stderr_ready()
        ):
            return bytes(out), bytes(err)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        # The channel's fileno is a pipe set when data, EOF or close arrive.
        select.select([chan], [], [], min(remaining, 1.0))
