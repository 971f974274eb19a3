"""Work inside many namespaces from threads of this process, not a process per namespace.

``ip netns exec NS cmd`` and ``ip -n NS`` each make a mount namespace of their own and
mount /sys in it: a copy of every mount on the host, among them one per namespace under
/run/netns. With a thousand nodes that is a thousand copies of a thousand mounts, which
made bringing them up take half a minute. A thread instead enters the namespace itself
(``setns``, per thread on Linux): what it writes under /proc/sys/net is the namespace's,
and a command it starts (``ip -batch``) is born inside the namespace, with no mount work.
Each job gets a thread of its own that ends with it, so no thread of this process is
ever left in a node's namespace.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab.errors import BackendError
from lab.run.backends.netns.iproute import IP_TIMEOUT

CLONE_NEWNET = 0x40000000
PARALLEL = 16  # threads at work at once; each mostly waits on the kernel or on `ip`

_libc = ctypes.CDLL(None, use_errno=True)


HERE = Path("/proc/thread-self/ns/net")


def enter(netns: Path) -> None:
    """Move the calling thread into the network namespace bound at ``netns``."""
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {netns}: {os.strerror(err)}")
    finally:
        os.close(fd)


@contextmanager
def visiting(netns: Path) -> Iterator[None]:
    """The calling thread in ``netns`` for the block, then back where it was. A thread
    whose Python code has ended can linger a moment in the kernel after ``join``: back
    home first, it never lingers in a node's namespace (which could then not go away)."""
    home = os.open(HERE, os.O_RDONLY | os.O_CLOEXEC)
    try:
        enter(netns)
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to the host's namespace: {os.strerror(err)}")
    finally:
        os.close(home)


def in_namespaces(jobs: Sequence[tuple[Path, Callable[[], None]]], what: str) -> None:
    """Run each job in a new thread inside its namespace, PARALLEL at a time; every job
    runs (or is refused) before the failures, if any, are raised together."""
    errors: list[str] = []
    slots = threading.BoundedSemaphore(PARALLEL)

    def work(netns: Path, job: Callable[[], None]) -> None:
        try:
            with visiting(netns):
                job()
        except (OSError, BackendError, subprocess.SubprocessError) as exc:
            errors.append(f"{netns.name}: {exc}")
        finally:
            slots.release()

    threads = []
    try:
        for netns, job in jobs:
            slots.acquire()
            thread = threading.Thread(target=work, args=(netns, job), name=f"netns {netns.name}")
            thread.start()
            threads.append(thread)
    finally:
        # Also on Ctrl-C: no job is started after, and those under way (a few short
        # `ip` runs) end before the exception goes on, so nothing changes the host later.
        for thread in threads:
            thread.join()
    if errors:
        raise BackendError(f"{what} failed: " + "; ".join(sorted(errors)))


def write_sysctls(values: dict[str, str]) -> None:
    """Set sysctls of the calling thread's namespace: ``net.ipv4.ip_forward`` and so on."""
    for key, value in values.items():
        path = Path("/proc/sys", *key.split("."))
        with open(path, "w", encoding="ascii") as f:
            f.write(value)


def ip_batch(lines: Sequence[str]) -> None:
    """``ip -batch -`` in the calling thread's namespace, fed ``lines``."""
    text = "".join(line + "\n" for line in lines)
    done = subprocess.run(
        ["ip", "-batch", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=IP_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise BackendError(f"ip -batch: {done.stderr.strip()}")


def popen_in(netns: Path, argv: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **options)`` started from a thread inside ``netns``: the
    child is born in the namespace, with no ``ip netns exec`` (and its mount copy) in
    between. OSError if the namespace cannot be entered or the program not started."""
    started: list[subprocess.Popen[Any]] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            with visiting(netns):
                started.append(subprocess.Popen(argv, **options))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=work, name=f"spawn in {netns.name}", daemon=True)
    thread.start()
    # Interrupted meanwhile, a child started all the same is in the namespace, where
    # teardown finds and stops every process.
    thread.join()
    if failed:
        raise failed[0]
    return started[0]
