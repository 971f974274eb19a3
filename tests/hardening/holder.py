"""Hold many connections open until told to let go (standard library only)::

    python3 -m tests.hardening.holder --host IP --port N --count C

Opens C connections and sends ``hello`` on each, waits until every reply has come or none
has for STALL_SECONDS, prints ``{"established", "answered"}`` as one JSON line, then holds
every connection until SIGTERM, closes them all and exits 0.
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

from tests.hardening.hostile import Target, connected, open_many, raise_fd_limit

STALL_SECONDS = 2.0


class Release(Exception):
    pass


def _release(signum: int, frame: FrameType | None) -> None:
    raise Release


def answered(socks: list[socket.socket]) -> int:
    """How many connections got a whole reply line, waiting while replies keep coming."""
    buffers = {sock: b"" for sock in socks}
    waiting = list(socks)
    last = time.monotonic()
    while waiting and time.monotonic() - last < STALL_SECONDS:
        ready, _, _ = select.select(waiting, [], [], 0.2)
        for sock in ready:
            last = time.monotonic()
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
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _release)
    raise_fd_limit()
    socks = open_many(Target(args.host, args.port, "echo", serial=False), args.count)
    try:
        up = [sock for sock in socks if connected(sock)]
        for sock in up:
            with contextlib.suppress(OSError):
                sock.send(b"hello\n")
        doc = {"established": len(up), "answered": answered(up)}
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
