"""Stopping a run's processes and removing its temp dirs, on hosts of this or a past process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lab.errors import BackendError
from lab.run.backends.ssh import impair
from lab.run.backends.ssh.conn import Host, HostLost, Options, default_known_hosts
from lab.run.backends.ssh.node import RemoteNode
from lab.run.backends.ssh.prepare import PREFLIGHT_TIMEOUT
from lab.run.backends.ssh.state import state_from

PARALLEL = 8  # hosts connected to / checked / cleaned at once

_T = TypeVar("_T")


class CleanIncomplete(BackendError):
    """``clean`` removed what it could reach; ``problems`` names each host it could not
    (one line each), ``removed`` what it did remove."""

    def __init__(self, removed: list[str], problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.removed = removed
        self.problems = problems


def parallel(items: Sequence[_T], work: Callable[[_T], None]) -> None:
    """Run ``work`` on every item, a few at a time; the first exception goes on."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(items))) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def clean_host(r: RemoteNode, run_id: str) -> list[str]:
    """Stop the run's processes on one host and remove its temp dir; what was removed."""
    if r.host.lost is not None:
        raise HostLost(f"node {r.state.node}: host {r.state.target} is unreachable ({r.host.lost})")
    if r.state.root is None and not r.state.procs and not r.state.impaired:
        return []  # up() stopped before the temp dir: no command of the run ever ran there
    items = [item for iface in r.state.impaired for item in impair.remove(r, iface)]
    r.state.impaired = []
    root = r.state.root or ""
    result = r.reap(r.node_marker(), root)
    if result["left"]:
        raise BackendError(
            f"node {r.state.node}: processes {result['left']} of run {run_id} would not stop"
        )
    if root and not result["removed"]:
        # reap removes only an existing dir; make sure it is gone, not just unremovable
        done = r.host.execute(r.command(["test", "-e", root]), timeout=PREFLIGHT_TIMEOUT)
        if done is not None and done[0] == 0:
            raise BackendError(f"node {r.state.node}: could not remove {root}")
    items += [f"{r.state.target}: process {pid}" for pid in result["killed"]]
    if result["removed"]:
        items.append(f"{r.state.target}: directory {root}")
    r.state.root = None
    r.state.procs = []
    return items


def clean_recorded(run_id: str, data: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Clean what a state file records, from a process that did not make it."""
    known = Path(data.get("known_hosts") or default_known_hosts())
    removed: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(item: tuple[str, Mapping[str, Any]]) -> None:
        node, info = item
        state = state_from(node, info)
        if state.root is None and not state.procs and not state.impaired:
            return  # nothing was put there
        try:
            host = Host(state.target, Options(known))
        except BackendError as exc:
            with lock:
                errors.append(f"node {node} ({state.target}): {exc}")
            return
        try:
            items = clean_host(RemoteNode(run_id, state, host), run_id)
            with lock:
                removed.extend(items)
        except BackendError as exc:
            with lock:
                errors.append(str(exc))
        finally:
            host.close()

    parallel(list(data.get("hosts", {}).items()), one)
    return removed, errors
