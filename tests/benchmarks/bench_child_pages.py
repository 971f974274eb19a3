"""Benchmark: how many memory pages a forked child writes while it serves one connection.

    python3 -m tests.benchmarks.bench_child_pages [--count 200]

After fork() parent and child share every page until one of them writes to it; the
writer's first write to each page costs a fault and a 4 KiB copy. CPython writes pages
merely by running code (reference counts, its caches), so in a fork-per-connection server
the pages a child writes are most of what a connection costs beyond fork() itself. Each
row forks --count children from one parent that has imported the lab's fork server and
frozen its objects, as the server does; each child serves one connection over a
socketpair and reports the minor faults the kernel counted for it (getrusage) between two
points: from before the serve to after it. Rows: the measurement alone; the bare
server's loop (recv, upper-case, sendall); the lab's ``serve_lines`` on one whole line
(logging the connect and the close); the same on two lines in one segment, which it reads
through a ``LineReader``. Medians, with the range; figures, not assertions. The counts
do not depend on the machine's load, so rows can be compared across runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import socket
import statistics
from collections.abc import Callable

import lab.programs.fork_server  # noqa: F401  (the parent's modules, as in the server)
from lab.programs.common import serve_lines, upper_case

Serve = Callable[[socket.socket], None]


def _nothing(conn: socket.socket) -> None:
    pass


def _bare(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data.upper())


def _lab(conn: socket.socket) -> None:
    serve_lines(conn, ("192.0.2.1", 4000), "pid=1", upper_case)


ROWS: list[tuple[str, bytes, Serve]] = [
    ("the measurement alone", b"hello\n", _nothing),
    ("bare loop, one line", b"hello\n", _bare),
    ("lab serve_lines, one line", b"hello\n", _lab),
    ("lab serve_lines, two lines at once", b"hello\nworld\n", _lab),
]


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _child(conn: socket.socket, serve: Serve, report: int) -> None:
    """In the child: count the faults of ``serve`` alone, write the count, never return."""
    try:
        gc.disable()  # as the fork server's child
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)  # the log lines go nowhere
        _minor_faults()  # first calls of getrusage: their own pages before the count
        before = _minor_faults()
        serve(conn)
        after = _minor_faults()
        os.write(report, str(after - before).encode())
    finally:
        os._exit(0)


def pages_of(request: bytes, serve: Serve) -> int:
    ours, peer = socket.socketpair()
    peer.sendall(request)
    peer.shutdown(socket.SHUT_WR)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        peer.close()
        _child(ours, serve, write_end)
    os.close(write_end)
    ours.close()
    count = int(os.read(read_end, 64) or b"-1")
    os.close(read_end)
    os.waitpid(pid, 0)
    peer.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    gc.freeze()  # as the fork server does before its first fork
    print(f"pages written by one forked child while it serves, median of {args.count}")
    for name, request, serve in ROWS:
        counts = [pages_of(request, serve) for _ in range(args.count)]
        median = statistics.median(counts)
        print(
            f"{name:38}{median:6.0f} pages ({min(counts)}-{max(counts)})"
            f"{median * 4:8.0f} KiB copied"
        )


if __name__ == "__main__":
    main()
