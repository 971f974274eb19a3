"""Iterative upper-casing echo server (default port 9877): one client at a time.

While one client is served, others still complete the handshake (the kernel queues them,
up to ``--backlog``) but get no answer until it leaves: the limitation the concurrent
servers remove.
"""

from __future__ import annotations

import os
import socket
import sys

from lab.programs.common import (
    Peer,
    parse_server_args,
    serve_lines,
    serve_tcp,
    tcp_server_parser,
    upper_case,
)
from lab.programs.wrap import tcp_listener

DEFAULT_PORT = 9877


def serve_one(conn: socket.socket, peer: Peer) -> None:
    serve_lines(conn, peer, f"pid={os.getpid()}", upper_case)


def main(argv: list[str] | None = None) -> int:
    parser = tcp_server_parser(
        "python3 -m lab.programs.iterative_server",
        "Iterative upper-casing echo server: serves one client at a time.",
        DEFAULT_PORT,
    )
    args = parse_server_args(parser, argv)
    listener = tcp_listener(args.host, args.port, args.backlog, args.reuseaddr)
    return serve_tcp(listener, args.backlog, serve_one)


if __name__ == "__main__":
    sys.exit(main())
