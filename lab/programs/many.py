"""Many connections of one client process at once, each in its own thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

# Each waiting connection is one thread; a small stack lets hundreds of them coexist.
THREAD_STACK_BYTES = 512 * 1024

# Not concurrent.futures, nor typing at run time: their imports cost a client more than
# the rest of its start-up, and a lab starts hundreds of clients at once.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


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


def run_many(count: int, concurrency: int, one: Callable[[int], T]) -> list[T]:
    """Run ``one(index)`` for every index, ``concurrency`` at a time, in threads; the
    results in index order. The first exception a call raised is raised once all ended."""
    raise_fd_limit()
    if concurrency > 1:
        threading.stack_size(THREAD_STACK_BYTES)
    results: dict[int, T] = {}
    errors: list[BaseException] = []
    indexes = iter(range(count))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            try:
                results[index] = one(index)
            except BaseException as exc:
                errors.append(exc)
                return

    workers = [threading.Thread(target=worker) for _ in range(min(concurrency, count))]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return [results[i] for i in range(count)]
