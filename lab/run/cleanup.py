"""``lab clean``: which runs may be removed, and removing them without losing evidence.

A run is removed only when its owner (the ``lab run`` process in the registry) is gone;
a run whose owner still runs is left alone and said so, unless it is named with
``--run-id`` and ``--force``: its owner is then stopped first, as Ctrl-C would stop it
(it collects its own evidence and tears down), and what remains is removed. Objects of a
run id that the registry does not know (its entry lost, or a program using a backend
directly) are orphaned unless they name a maker that is still alive (netns: the run
directory's owner.json; docker: a label; ssh: the state file).

Before a run's objects go, what its nodes hold is copied into its results folder (never
over a file already there) and run.json says ``lab clean`` did it. Clean returns once
the run's processes have exited, or says which did not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from lab.errors import BackendError, LabError, UsageError
from lab.run.backends.base import RUN_ID_RE, Backend
from lab.run.record import CleanedRecord, load_run
from lab.run.sealing import seal_results
from lab.run.session import RegisteredRun, forget_run, registered_runs

PROCESS_GRACE = 5.0  # seconds clean waits for a removed run's processes to exit
OWNER_GRACE = 30.0  # seconds a forced clean gives a live run's owner to tear down itself

Progress = Callable[[str], None]


@dataclass
class CleanResult:
    """What one ``lab clean`` did: removed objects, evidence collected (per run), runs
    left alone because they still run, and what it could not do."""

    removed: list[str] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)
    spared: list[RegisteredRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_run_id(run_id: str) -> None:
    if not RUN_ID_RE.match(run_id):
        raise UsageError(
            f"--run-id {run_id!r}: not a run id (six hex digits, as `lab ls` shows them)"
        )


def clean(
    backends: Mapping[str, type[Backend]],
    run_id: str | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> CleanResult:
    """Remove orphaned runs (every one, or ``run_id``) from the given backends."""
    say = progress or (lambda _m: None)
    if force and run_id is None:
        raise UsageError("--force removes one running lab: give its --run-id too")
    if run_id is not None:
        check_run_id(run_id)
    result = CleanResult()
    forced = False
    if run_id is not None:
        owner = {r.run_id: r for r in registered_runs()}.get(run_id)
        if owner is not None and owner.alive:
            if not force:
                raise UsageError(
                    f"run {run_id} is still running (`lab run` pid {owner.pid}); stop it, "
                    f"or add --force to remove it (its evidence so far is kept)"
                )
            if not _stop_owner(owner, say):
                forced = True
                result.problems.append(
                    f"run {run_id}: `lab run` pid {owner.pid} did not end within "
                    f"{OWNER_GRACE:g} s of SIGTERM; its objects are removed under it"
                )
    found: dict[str, list[type[Backend]]] = {}
    for name, cls in backends.items():
        try:
            rids = {run_id} if run_id is not None else cls.leftover_runs()
        except BackendError as exc:
            result.problems.append(f"{name}: {exc}")
            continue
        for rid in rids:
            if RUN_ID_RE.match(rid):  # a name that only looks like the lab's is not ours
                found.setdefault(rid, []).append(cls)
    # Read after the objects were listed: a run registers before it creates anything, so
    # every object seen above whose run is alive has its entry here.
    runs = {r.run_id: r for r in registered_runs()}
    targets = set(found) | {r.run_id for r in runs.values() if not r.alive}
    for rid in sorted(targets & ({run_id} if run_id is not None else targets)):
        entry = runs.get(rid)
        if entry is None:
            entry = _unregistered_owner(rid, found.get(rid, []))
            if entry is not None and not entry.alive:
                entry = None  # no results folder known: nothing to collect into or mark
        if entry is not None and entry.alive and not forced:
            result.spared.append(entry)
            continue
        _remove_run(rid, entry, found.get(rid, []), result)
    return result


def _unregistered_owner(rid: str, holders: list[type[Backend]]) -> RegisteredRun | None:
    """A run the registry does not know (its entry lost, or made by a program that uses a
    backend directly): the process its objects name as their maker, if any is alive."""
    for cls in holders:
        try:
            owner = cls.owner(rid)
        except BackendError:
            continue
        if owner is not None and owner.alive():
            return RegisteredRun(rid, "?", cls.name, owner.pid, "", "", owner.start, True)
    return None


def _stop_owner(owner: RegisteredRun, say: Progress) -> bool:
    """SIGTERM a live owner, as Ctrl-C would: it collects its evidence, writes run.json
    and tears down. Whether it ended within OWNER_GRACE."""
    say(f"stopping run {owner.run_id}: SIGTERM to `lab run` pid {owner.pid}")
    with contextlib.suppress(ProcessLookupError):
        os.kill(owner.pid, signal.SIGTERM)
    deadline = time.monotonic() + OWNER_GRACE
    while time.monotonic() < deadline:
        now = {r.run_id: r for r in registered_runs()}.get(owner.run_id)
        if now is None or not now.alive:
            return True
        time.sleep(0.1)
    return False


def _remove_run(
    rid: str, entry: RegisteredRun | None, holders: list[type[Backend]], result: CleanResult
) -> None:
    """Collect, remove, wait for the processes, mark run.json, forget the entry."""
    out = Path(entry.out) if entry is not None and entry.out else None
    collected: list[str] = []
    problems: list[str] = []
    for cls in holders:
        if out is not None and out.is_dir():
            try:
                collected += [f"{cls.name}: {item}" for item in cls.collect_leftovers(rid, out)]
            except (BackendError, OSError) as exc:
                problems.append(f"collecting from {cls.name}: {exc}")
        procs = cls.run_processes(rid)
        try:
            result.removed += [f"{cls.name}: {item}" for item in cls.clean(rid)]
        except BackendError as exc:
            # A partial clean (the ssh backend's CleanIncomplete) says what it removed.
            result.removed += [f"{cls.name}: {item}" for item in getattr(exc, "removed", [])]
            problems += [f"{cls.name}: {p}" for p in getattr(exc, "problems", [str(exc)])]
        problems += [
            f"{cls.name}: process {pid} ({cmd}) still running {PROCESS_GRACE:g} s after clean"
            for pid, cmd in _wait_gone(cls, rid, procs).items()
        ]
    if collected:
        result.collected.append(f"run {rid} into {out}: {', '.join(collected)}")
    # Kept while objects remain, so that the next clean still knows the results folder.
    keep_entry = bool(problems)
    if entry is not None and out is not None and out.is_dir():
        _mark(out, entry, collected, problems)
        # What was collected is evidence like a finished run's: the user's, not others' to change.
        problems += seal_results(out)
    result.problems += [f"run {rid}: {p}" for p in problems]
    if entry is not None and not keep_entry and forget_run(rid):
        result.removed.append(f"registry: run {rid}")


def _wait_gone(cls: type[Backend], rid: str, before: Mapping[int, str]) -> dict[int, str]:
    """Wait, up to PROCESS_GRACE, until none of the run's processes (those seen before
    the clean, and any found now) is running; those that still are."""
    deadline = time.monotonic() + PROCESS_GRACE
    while True:
        left = {pid: cmd for pid, cmd in before.items() if _running(pid)}
        left.update(cls.run_processes(rid))
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """A process that has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in {"Z", "X"}
    except (OSError, IndexError):
        return False


def _mark(out: Path, entry: RegisteredRun, collected: list[str], problems: list[str]) -> None:
    """Say in run.json that ``lab clean`` removed the run and what it collected. A run.json
    that is missing or unreadable is left as it is (the problem is reported)."""
    try:
        record = load_run(out)
    except LabError as exc:
        problems.append(f"run.json not marked: {exc}")
        return
    if record.run_id != entry.run_id:
        problems.append(f"{out}: run.json is of run {record.run_id}, left as it is")
        return
    error = record.error
    if error is None and not record.interrupted:
        error = (
            f"removed by `lab clean --force` while `lab run` pid {entry.pid} still ran"
            if entry.alive
            else f"the run ended without tearing down (`lab run` pid {entry.pid} was gone)"
        ) + "; `lab clean` collected its evidence and removed it"
    # replace(): a record read from a file writes back only the keys it was read with.
    record = replace(
        record,
        error=error,
        cleaned=CleanedRecord(
            by="lab clean",
            at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            owner_pid=entry.pid,
            owner_alive=entry.alive,
            collected=collected,
            problems=list(problems),
        ),
    )
    try:
        record.save(out)
    except OSError as exc:
        problems.append(f"{out}: cannot write run.json: {exc}")
