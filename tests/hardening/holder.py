"""Hold many connections open until told to let go (standard library only)::

    python3 -m tests.hardening.holder --host IP --port N --count C --expect E

Opens C connections and sends ``hello`` on each, waits until E replies have come (at most
DEADLINE_SECONDS) and GRACE_SECONDS more for any beyond E, prints ``{"established",
"answered"}`` as one JSON line, then holds every connection until SIGTERM, closes them
all and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import signal
import socket
import sys
import time
from types import FrameType

from lab.programs.hostile_io import Target, raise_fd_limit
from lab.programs.hostile_tcp import connected, open_many

DEADLINE_SECONDS = 60.0  # an upper bound, never a speed expectation
GRACE_SECONDS = 1.0


class Release(Exception):
    pass


def _release(signum: int, frame: FrameType | None) -> None:
    raise Release


def answered(socks: list[socket.socket], expect: int) -> int:
    """How many connections got a whole reply line: once ``expect`` have, any more that
    come within the grace period count too."""
    buffers = {sock: b"" for sock in socks}
    waiting = list(socks)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(waiting, [], [], 0.1)
        if len(socks) - len(waiting) >= expect:
            deadline = min(deadline, time.monotonic() + GRACE_SECONDS)
        for sock in ready:
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            buffers[sock] += data
            if not data or b"\n" in buffers[sock]:
                waiting.remove(sock)
    return sum(1 for data in buffers.values() if data.endswith(b"\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.hardening.holder")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True, help="replies to wait for")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _release)
    raise_fd_limit()
    socks = open_many(Target(args.host, args.port, "echo", serial=False), args.count)
    try:
        up = [sock for sock in socks if connected(sock)]
        for sock in up:
            with contextlib.suppress(OSError):
                sock.send(b"hello\n")
        doc = {"established": len(up), "answered": answered(up, args.expect)}
        print(json.dumps(doc), flush=True)
        while True:
            signal.pause()
    except Release:
        return 0
    finally:
        for sock in socks:
            sock.close()


if __name__ == "__main__":
    sys.exit(main())
