"""A live lab's node on the ssh backend, from a later command: a command run there with its
stdin, stdout and stderr streamed (and, for a terminal, a pty on the host and this terminal
in raw mode, so that Ctrl-C and Ctrl-D reach the remote program), and its exit status.

The connection is made again from the run's ssh state file (the host, the known_hosts file
the lab was brought up with, where the run's folder is and whether sudo is needed); the
command carries the run's marks, so that ``lab down`` stops whatever it left behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import tty as ttymode
from pathlib import Path
from typing import Any

import paramiko

from lab.errors import BackendError, LabError, UsageError
from lab.i18n import msg
from lab.run.backends.ssh.conn import Host, Options
from lab.run.backends.ssh.node import RemoteNode
from lab.run.backends.ssh.state import read_state, state_from, state_path


def ssh_attach(run_id: str, node: str, argv: list[str], *, tty: bool) -> int:
    """Run ``argv`` on the node's host; its exit status (130 when the connection ends
    without one, as after a Ctrl-C here)."""
    data = read_state(state_path(run_id))
    if data is None:
        raise LabError.said(msg("live.no_ssh_state", run=run_id, path=state_path(run_id)))
    info = data.get("hosts", {}).get(node)
    if info is None:
        raise UsageError.said(msg("live.no_ssh_host", run=run_id, node=repr(node)))
    hs = state_from(node, info)
    host = Host(hs.target, Options(Path(str(data["known_hosts"])), False))
    try:
        remote = RemoteNode(run_id, hs, host)
        line = remote.command(argv, cwd=remote.root / "work", env=remote.lab_env())
        chan = host.open_session()
        try:
            return _pump(chan, line, tty=tty)
        finally:
            chan.close()
    finally:
        host.close()


def _pump(chan: paramiko.Channel, line: str, *, tty: bool) -> int:
    stdin = sys.stdin.fileno()
    raw = tty and os.isatty(stdin)
    if tty:
        size = os.get_terminal_size(stdin) if raw else os.terminal_size((80, 24))
        chan.get_pty(os.environ.get("TERM", "xterm"), size.columns, size.lines)
    chan.exec_command(line)
    saved = termios.tcgetattr(stdin) if raw else None
    if raw:
        ttymode.setraw(stdin)
    watched: list[Any] = [chan, stdin]
    try:
        while True:
            ready, _, _ = select.select(watched, [], [], 1.0)
            if chan in ready or chan.recv_ready() or chan.recv_stderr_ready():
                while chan.recv_ready():
                    _write(1, chan.recv(1 << 16))
                while chan.recv_stderr_ready():
                    _write(2, chan.recv_stderr(1 << 16))
            if stdin in ready:
                data = os.read(stdin, 1 << 14)
                if data:
                    chan.sendall(data)
                else:  # end of our stdin: the remote command's too
                    chan.shutdown_write()
                    watched.remove(stdin)
            if chan.exit_status_ready() and not (chan.recv_ready() or chan.recv_stderr_ready()):
                break
            if chan.closed and not chan.exit_status_ready():
                break
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise BackendError.said(msg("live.connection_ended", error=exc)) from None
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
    status = chan.recv_exit_status() if chan.exit_status_ready() else -1
    return 130 if status < 0 else status


def _write(fd: int, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError):
        while data:
            data = data[os.write(fd, data) :]
