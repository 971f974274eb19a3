"""Thread-per-connection upper-casing echo server (default port 8000).

Each connection gets a detached (daemon) thread that owns everything about it: its socket,
the peer address and its line buffer live in that thread's frame, so there is no shared
per-connection table to overflow and no peer printed from someone else's slot.
"""

from __future__ import annotations

import itertools
import socket
import sys
import threading

from lab.programs.common import (
    Peer,
    Respond,
    parse_server_args,
    serve_lines,
    serve_tcp,
    tcp_server_parser,
    upper_case,
)
from lab.programs.wrap import log, tcp_listener

DEFAULT_PORT = 8000


class ThreadSpawner:
    """Starts one daemon thread per accepted connection, named Thread-1, Thread-2, ..."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self._numbers = itertools.count(1)

    def __call__(self, conn: socket.socket, peer: Peer) -> None:
        name = f"Thread-{next(self._numbers)}"
        thread = threading.Thread(target=self._serve, args=(conn, peer), name=name, daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # "can't start new thread": out of memory or tasks
            log(f"error thread: {exc}")
            conn.close()

    def _serve(self, conn: socket.socket, peer: Peer) -> None:
        serve_lines(conn, peer, f"thread={threading.current_thread().name}", self.respond)


def run_threaded(listener: socket.socket, backlog: int, respond: Respond) -> int:
    """Serve until SIGTERM/SIGINT; threads still serving end with the process."""
    return serve_tcp(listener, backlog, ThreadSpawner(respond))


def main(argv: list[str] | None = None) -> int:
    parser = tcp_server_parser(
        "python3 -m lab.programs.thread_server",
        "Thread-per-connection upper-casing echo server.",
        DEFAULT_PORT,
    )
    args = parse_server_args(parser, argv)
    listener = tcp_listener(args.host, args.port, args.backlog, args.reuseaddr)
    return run_threaded(listener, args.backlog, upper_case)


if __name__ == "__main__":
    sys.exit(main())
