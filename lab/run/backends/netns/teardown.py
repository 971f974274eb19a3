"""Removing a run: its processes, namespaces, links and directories, found by name."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterable, Sequence

from lab.errors import BackendError
from lab.run.backends.base import RUN_ID_RE
from lab.run.backends.netns.iproute import run_ip
from lab.run.backends.netns.names import (
    BASE_DIR,
    NETNS_DIR,
    lab_namespaces,
    link_kind,
    ns_rid,
    run_links,
)

TERM_GRACE = 1.0  # seconds a node process gets between SIGTERM and SIGKILL at teardown
VETH_GRACE = 5.0  # seconds to let the kernel remove a deleted namespace's veths itself


def _pids_in(namespaces: Iterable[str]) -> dict[int, str]:
    """PIDs of live processes in the given namespaces, mapped to the namespace name.

    What ``ip netns pids`` does, once for all namespaces: a process is in a namespace
    when its /proc/PID/ns/net is the same inode as the namespace's bind mount.
    """
    wanted: dict[tuple[int, int], str] = {}
    for name in namespaces:
        try:
            st = os.stat(NETNS_DIR / name)
        except OSError:
            continue
        wanted[(st.st_dev, st.st_ino)] = name
    found: dict[int, str] = {}
    if not wanted:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone, or a zombie (no namespace any more)
            continue
        owner = wanted.get((st.st_dev, st.st_ino))
        if owner is not None:
            found[int(entry)] = owner
    return found


def run_processes(run_id: str) -> dict[int, str]:
    """Live processes of a run, PID -> command line: those in its namespaces, and those
    working in its node directories (every command on a node starts there), which a
    process keeps even after its namespace is gone."""
    namespaces = [n for n in lab_namespaces() if ns_rid(n) == run_id]
    pids = set(_pids_in(namespaces))
    prefix = f"{BASE_DIR / run_id}/"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/cwd").startswith(prefix):
                    pids.add(int(entry))
    found = {}
    for pid in sorted(pids):
        if _exited(pid):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[pid] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
    return found


def _exited(pid: int) -> bool:
    """True once a process has ended: gone, or a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


def _signal_and_wait(pids: Iterable[int], signum: int, grace: float) -> list[int]:
    """Send ``signum`` to each PID and wait up to ``grace`` s; the PIDs still running."""
    pending = sorted(pids)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        time.sleep(0.01)
        pending = [pid for pid in pending if not _exited(pid)]
    return pending


def _kill_all(namespaces: Sequence[str]) -> tuple[list[int], list[int]]:
    """SIGTERM every process in the namespaces, wait briefly, SIGKILL the rest. Returns
    the PIDs found and those that survived even SIGKILL (stuck in the kernel).

    A process counts as stopped only once it has exited for good (a zombie is fine), not
    merely left the namespace: a dying process drops its namespace a moment before it
    exits, and callers check ``Proc.running()`` right after teardown. The namespaces are
    looked at again before SIGKILL, for children forked meanwhile.
    """
    first = _pids_in(namespaces)
    survivors = _signal_and_wait(first, signal.SIGTERM, TERM_GRACE)
    late = _pids_in(namespaces)
    survivors = _signal_and_wait({*survivors, *late}, signal.SIGKILL, TERM_GRACE)
    return sorted({*first, *late}), survivors


def remove_run(run_id: str) -> list[str]:
    """Remove every object named after ``run_id``; what was removed, one item each.

    Processes first (a process keeps its namespace alive), then the namespaces, the
    switch's included: the kernel destroys their devices (bridges, both ends of every
    veth) in one batch, where deleting veths one by one costs an RCU grace period each
    (about 20 ms: two seconds for 100 nodes). Links with the run's names in the host's
    own namespace are not made by ``up`` but are removed as well, after a short wait for
    the kernel in case they were veths whose other end was in a deleted namespace.
    """
    if not RUN_ID_RE.match(run_id):  # it becomes part of a path given to rmtree
        raise BackendError(f"run id must be six hex digits, got {run_id!r}")
    removed: list[str] = []
    namespaces = [n for n in lab_namespaces() if ns_rid(n) == run_id]
    killed, survivors = _kill_all(namespaces)
    removed += [f"process {pid}" for pid in killed if pid not in survivors]
    links = run_links(run_id)
    if namespaces:
        run_ip(["-force"], batch=[f"netns del {n}" for n in namespaces], check=False)
        removed += [f"namespace {n}" for n in namespaces]
    _remove_host_links(run_id, links)
    removed += [f"link {n}" for n in links]
    run_dir = BASE_DIR / run_id
    if run_dir.exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        removed.append(f"directory {run_dir}")
    left = [n for n in lab_namespaces() if ns_rid(n) == run_id] + run_links(run_id)
    left += [f"process {pid}" for pid in survivors]
    if left:
        raise BackendError(f"could not remove {', '.join(left)}")
    return removed


def _remove_host_links(run_id: str, links: Sequence[str]) -> None:
    """Delete the run's links found in the host's namespace before its namespaces went.

    Veths first get VETH_GRACE to vanish with their peer's namespace; what is left of
    them, and the bridges, are deleted here.
    """
    deadline = time.monotonic() + VETH_GRACE
    veths = [n for n in links if link_kind(n) == "v"]
    while veths and time.monotonic() < deadline:
        time.sleep(0.02)
        veths = [n for n in run_links(run_id) if link_kind(n) == "v"]
    bridges = [n for n in links if link_kind(n) == "b"]
    if veths or bridges:
        # -force: keep going past a link that vanished meanwhile.
        run_ip(["-force"], batch=[f"link del dev {n}" for n in (*veths, *bridges)], check=False)
