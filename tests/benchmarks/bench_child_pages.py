"""Benchmark: how many memory pages a forked child writes to serve one connection.

    python3 -m tests.benchmarks.bench_child_pages [--count 200]

After fork() parent and child share every page until one of them writes to it; the
writer's first write to each page costs a fault and a 4 KiB copy. CPython writes pages
merely by running code (reference counts, its caches, its frames), so in a
fork-per-connection server the pages a child writes are most of what a connection costs
beyond fork() itself. The kernel counts them: each row forks --count children, one after
another, from a parent that has imported the lab's fork server and frozen its objects
as the server does, and reads the minor faults of each child, from fork() to exit, in
getrusage(RUSAGE_CHILDREN) once it is reaped. Rows: a child that exits at once; the bare
server's child (recv, upper-case, sendall until EOF); the lab's fork server's own child
(``ForkServer.handle``), on one whole line and on two lines in one segment. Medians, with
the range; figures, not assertions. The counts hardly depend on the machine's load.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import socket
from collections.abc import Callable

from lab.programs.fork_server import ForkServer

PEER = ("192.0.2.1", 4000)
Spawn = Callable[[socket.socket], int]  # serves the connection in a new child: its pid


def _exit_at_once(conn: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return pid


def _bare(conn: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:  # bare_fork_server's child, written out as there: a call costs pages
        while data := conn.recv(65536):
            conn.sendall(data.upper())
        os._exit(0)
    return pid


def _lab(server: ForkServer) -> Spawn:
    def spawn(conn: socket.socket) -> int:
        server.handle(conn, PEER)
        return server.children.pop()

    return spawn


def child_pages(spawn: Spawn, request: bytes) -> int:
    """Minor faults of one child serving ``request`` (the peer then closes)."""
    ours, peer = socket.socketpair()
    peer.sendall(request)
    peer.shutdown(socket.SHUT_WR)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    pid = spawn(ours)
    ours.close()
    os.waitpid(pid, 0)
    peer.close()
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before


def _median(counts: list[int]) -> float:
    # Not statistics.median: statistics imports random, whose at-fork handler would then
    # run in every child measured, as it does in no server of the lab.
    ordered = sorted(counts)
    middle = len(ordered) // 2
    return (ordered[middle] + ordered[~middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = ForkServer(listener, reap=False, double_fork=False)
        rows: list[tuple[str, Spawn, bytes]] = [
            ("a child that exits at once", _exit_at_once, b""),
            ("bare server's child, one line", _bare, b"hello\n"),
            ("lab fork_server's child, one line", _lab(server), b"hello\n"),
            ("lab fork_server's child, two lines", _lab(server), b"hello\nworld\n"),
        ]
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)  # the lab's children log their connections on stderr
        os.close(null)
        gc.collect()  # as ForkServer.run does before its first fork
        gc.freeze()
        print(f"pages written by one forked child, fork() to exit, median of {args.count}")
        for name, spawn, request in rows:
            counts = [child_pages(spawn, request) for _ in range(args.count)]
            median = _median(counts)
            print(
                f"{name:38}{median:6.0f} pages ({min(counts)}-{max(counts)})"
                f"{median * 4:8.0f} KiB copied",
                flush=True,
            )


if __name__ == "__main__":
    main()
