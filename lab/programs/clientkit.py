"""What the line client and the UDP client share: an outcome per connection, the printer,
running many at once, the report, the common options and where the lines come from."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading

from lab.programs.common import positive_int

# Each waiting connection is one thread; a small stack lets hundreds of them coexist.
THREAD_STACK_BYTES = 512 * 1024

# Types for the checker only: typing was a part of a client's start-up, and a run starts
# its clients all at once.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any, TextIO


class Outcome:
    """What happened on one connection (or one UDP client socket)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.local: str | None = None
        self.sent: list[str] = []
        self.replies: list[str] = []
        self.error: str | None = None
        self.closed_early = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.closed_early and len(self.replies) >= len(self.sent)

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "local": self.local,
            "sent": self.sent,
            "replies": self.replies,
            "error": self.error,
            "closed_early": self.closed_early,
        }


class Printer:
    """Human output: one line per event, prefixed with the connection when there are
    several; silent with --json. Lines from different threads never interleave."""

    def __init__(self, enabled: bool, prefixed: bool) -> None:
        self.enabled = enabled
        self.prefixed = prefixed
        self._lock = threading.Lock()

    def __call__(self, index: int, text: str, stream: TextIO | None = None) -> None:
        if not self.enabled:
            return
        prefix = f"[{index}] " if self.prefixed else ""
        with self._lock:
            print(prefix + text, file=stream or sys.stdout, flush=True)


def raise_fd_limit() -> None:
    """Many connections at once need many descriptors: lift the soft limit to the hard one."""
    try:
        import resource
    except ImportError:  # not on Linux: nothing to lift
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)  # the kernel's usual nr_open; "unlimited" is refused
    if soft < hard:
        # On failure the soft limit stays; connections beyond it report EMFILE.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def stdin_lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        yield line.rstrip("\r\n")


def run_many(count: int, concurrency: int, one: Callable[[int], Outcome]) -> list[Outcome]:
    """Run ``one(index)`` for every index, ``concurrency`` at a time, in threads; the
    outcomes in index order. If one raises, no index is started after it and the first
    error (by index) is raised once the others under way have ended."""
    raise_fd_limit()
    if concurrency > 1:
        threading.stack_size(THREAD_STACK_BYTES)
    outcomes: dict[int, Outcome] = {}
    errors: dict[int, BaseException] = {}
    todo = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(todo, None) if not errors else None
            if index is None:
                return
            try:
                outcomes[index] = one(index)
            except BaseException as exc:
                with lock:
                    errors[index] = exc

    workers = [threading.Thread(target=work) for _ in range(min(concurrency, count))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[min(errors)]
    return [outcomes[index] for index in range(count)]


def report(program: str, server: str, outcomes: Sequence[Outcome], as_json: bool) -> int:
    ok = sum(1 for o in outcomes if o.ok)
    if as_json:
        doc = {
            "program": program,
            "server": server,
            "connections": [o.as_json() for o in outcomes],
            "ok": ok,
            "failed": len(outcomes) - ok,
        }
        print(json.dumps(doc, ensure_ascii=False), flush=True)
    elif len(outcomes) > 1:
        print(f"{ok} of {len(outcomes)} connections ok", file=sys.stderr, flush=True)
    return 0 if ok == len(outcomes) else 1


def add_common_options(parser: argparse.ArgumentParser, timeout: float) -> None:
    parser.add_argument("--host", required=True, help="server address")
    parser.add_argument(
        "--send",
        action="append",
        metavar="LINE",
        help="a line to send (repeatable); without it, lines are read from stdin",
    )
    parser.add_argument("--count", type=positive_int, default=1, help="clients in all (1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help=f"seconds to wait for each reply (default {timeout:g})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")


def input_lines(send: list[str] | None, count: int) -> Iterable[str]:
    """The --send lines, else stdin: read lazily for one interactive client, or once up
    front and shared when several clients send the same lines."""
    if send is not None:
        return list(send)
    if count == 1:
        return stdin_lines(sys.stdin)
    return list(stdin_lines(sys.stdin))
