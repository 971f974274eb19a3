"""A deliberately broken upper-casing echo server, serving one connection at a time: the
negative control that shows the hardening checks can fail (standard library only)::

    python3 -m tests.hardening.leaky --host IP --port N --leak fds|memory

``fds``: a finished connection's socket is never closed. ``memory``: every connection
leaves 40 MiB behind, written so that it is resident. Logs ``listening`` like the lab's
servers; exits 0 on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from types import FrameType

LEAK_BYTES = 40 << 20


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.hardening.leaky")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--leak", choices=["fds", "memory"], required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit)
    listener = socket.create_server((args.host, args.port))
    host, port = listener.getsockname()
    print(f"listening tcp {host}:{port} pid={os.getpid()}", file=sys.stderr, flush=True)
    kept: list[object] = []
    while True:
        conn, _ = listener.accept()
        with conn.makefile("rb") as lines:
            for line in lines:
                conn.sendall(line.upper())
        if args.leak == "fds":
            kept.append(conn)
        else:
            conn.close()
            kept.append(b"x" * LEAK_BYTES)


if __name__ == "__main__":
    sys.exit(main())
