"""The start barrier of a scenario's clients, the client's side (``--barrier S``).

A client started late (its node's exec slow under load) would hold its connections after
the others had closed theirs, and the "during" snapshot would never see them together. So
a client first says it is ready, on a line of its own on stderr, then waits for one line
on stdin: ``go`` once every client of its scenario has said so, anything else is why it
must not go (a client that never started, named). Standard library only.
"""

from __future__ import annotations

import argparse
import os
import select
import sys

READY = "socket-lab: ready at the start barrier"
GO = "go"
EXIT_STATUS = 3  # the barrier did not open: nothing was connected


def wait_at_barrier(timeout: float) -> str | None:
    """Say ready and wait at most ``timeout`` seconds for the word; None: go, else the
    reason not to. The run answers well before ``timeout``; the bound is for a run that
    vanished without closing this end."""
    print(READY, file=sys.stderr, flush=True)
    fd = sys.stdin.fileno()
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return f"start barrier: no word within {timeout:g} s"
        # A byte at a time: what follows the line (nothing, today) stays for the program.
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    word = line.decode("utf-8", "replace").strip()
    if word == GO:
        return None
    return word or "start barrier: closed before the word to go"


def add_barrier_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--barrier",
        type=float,
        metavar="S",
        help="say ready on stderr, wait up to S s for 'go' on stdin before connecting",
    )


def barrier_or_exit(timeout: float | None) -> None:
    """With ``--barrier``: wait at it, or end the client with the reason (nothing was sent)."""
    if timeout is None:
        return
    why = wait_at_barrier(timeout)
    if why is not None:
        print(why, file=sys.stderr, flush=True)
        sys.exit(EXIT_STATUS)
