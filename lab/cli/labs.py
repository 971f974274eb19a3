"""``lab clean`` and ``lab ls``: the running and orphaned labs of every backend."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from lab.cli.progress import progress_printer
from lab.errors import read_back
from lab.i18n import t

if TYPE_CHECKING:
    from lab.run.backends.base import Backend


def cmd_clean(args: argparse.Namespace) -> int:
    """Orphaned runs only (their `lab run` is gone), on every backend, whichever fails;
    a running lab is left alone and listed. What could not be cleaned (a host that does
    not answer, a process that would not exit) is listed on stderr and the exit code is 1."""
    from lab.run.cleanup import check_run_id, clean
    from lab.run.livestate import forget_live, live_states

    if args.run_id is not None:
        check_run_id(args.run_id)  # before any backend is asked
    result = clean(
        usable_backends(args.engines), args.run_id, force=args.force, progress=progress_printer()
    )
    # A live lab's state file goes with its run, once the run is gone (never a live one's).
    failed = " ".join(result.problems)
    for state in live_states():
        if args.run_id in (None, state.run_id) and not state.alive() and state.run_id not in failed:
            forget_live(state.run_id)
            result.removed.append(f"live lab {state.name}: stale state ({state.run_id})")
    spared = [
        f"run {r.run_id} ({r.backend}, topology {r.topology}): still running, "
        f"owned by `lab run` pid {r.pid}"
        for r in result.spared
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "removed": result.removed,
                    "collected": result.collected,
                    "left_alone": spared,
                    "problems": result.problems,
                }
            )
        )
    else:
        nothing = t("labs.nothing_removed" if result.problems else "labs.nothing_to_clean")
        removed = [read_back(line) for line in result.removed]
        print("\n".join(removed) if removed else nothing)
        for line in result.collected:
            print(t("labs.collected", what=line))
        for line, r in zip(spared, result.spared, strict=True):
            print(t("labs.left_alone", what=read_back(line), run=r.run_id))
    if result.problems:
        lines = "".join(f"\n  {read_back(p)}" for p in result.problems)
        print(f"lab: {t('labs.not_cleaned', lines=lines)}", file=sys.stderr)
        return 1
    return 0


def usable_backends(engines: str | None = None) -> dict[str, type[Backend]]:
    """The backends clean may ask: those usable here, and netns always (its objects are
    found by name, and a missing tool is reported as a problem, not a crash); the swarm
    backend always too when given an engines file (each engine that answers is cleaned,
    and one that does not is reported)."""
    from lab.run.backends import BACKENDS

    usable: dict[str, type[Backend]] = {}
    for name in BACKENDS:
        try:
            cls = backend_named(name, engines)
        except ImportError:
            continue
        if name == "netns" or (name == "swarm" and engines) or cls.available() is None:
            usable[name] = cls
    return usable


def backend_named(name: str, engines: str | None) -> type[Backend]:
    """The backend class ``name``; the swarm backend on the engines of ``engines``."""
    from lab.run.backends import backend_class

    if name != "swarm" or not engines:
        return backend_class(name)
    from pathlib import Path

    from lab.run.backends.swarm import SwarmBackend, load_engines

    return SwarmBackend.configured(load_engines(Path(engines)))


def cmd_ls(args: argparse.Namespace) -> int:
    from lab.run.backends import BACKENDS
    from lab.run.session import registered_runs

    runs: dict[str, dict[str, Any]] = {r.run_id: asdict(r) for r in registered_runs()}
    for name in BACKENDS:
        try:
            cls = backend_named(name, args.engines)
        except ImportError:
            continue
        if cls.available() is not None:
            continue
        for run_id, what in cls.running_labs().items():
            if run_id not in runs:  # not registered: alive if its objects' maker is
                owner = cls.owner(run_id)
                alive = owner is not None and owner.alive()
                runs[run_id] = {"run_id": run_id, "backend": name, "alive": alive}
                if alive and owner is not None:
                    runs[run_id]["pid"] = owner.pid
            runs[run_id]["objects"] = what
    from lab.run.livestate import live_states

    for live in live_states():
        row = runs.setdefault(live.run_id, {"run_id": live.run_id, "backend": live.backend})
        row.update(live=live.name, topology=live.topology, alive=live.alive(), pid=live.pid)
    rows = sorted(runs.values(), key=lambda r: str(r.get("started", "")))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(t("labs.none"))
    for r in rows:
        state = t("labs.running", pid=r.get("pid")) if r.get("alive") else t("labs.orphaned")
        if r.get("live"):
            how = f"`lab down {r['live']}`"
            also = state if r.get("alive") else t("labs.stale", how=how)
            state = t("labs.live", name=r["live"], state=also)
        print(
            f"{r['run_id']}  {r.get('backend', '?'):7} {r.get('topology', '?'):12} "
            f"{r.get('started', '')}  {state}  {r.get('objects', '')}"
        )
    return 0
