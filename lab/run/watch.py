"""The pace of a scenario's ``watch``: snapshots every WATCH_EVERY seconds after the
``after`` one, e.g. to see a TIME_WAIT socket last its 60 s and go."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from lab.run.collect import snapshot
from lab.run.record import WatchRecord
from lab.run.session import Session

WATCH_EVERY = 2.0


def watch_times(longest: float, every: float = WATCH_EVERY) -> Iterator[tuple[str, float]]:
    """``(phase, wall time)`` for each snapshot to take, ``watch-001`` first, paced from
    the start (a slow snapshot delays only itself, not the ones after it) until ``longest``
    seconds have passed. The caller takes each snapshot before asking for the next."""
    start = time.monotonic()
    k = 0
    while True:
        k += 1
        if k * every > longest + 1e-9:  # (5 * 0.01 > 0.05 in floating point)
            return
        due = start + k * every
        time.sleep(max(0.0, due - time.monotonic()))
        yield f"watch-{k:03d}", time.time()


def run_watch(
    session: Session, step: Callable[[str], None], note: Callable[[str, dict[str, str]], None]
) -> list[WatchRecord] | None:
    """Snapshot every node for the longest ``watch`` of the scenarios (None without one);
    each snapshot is recorded with its time, not as a phase (the report's tables keep their
    four phases). ``step`` names the run's step; ``note`` gets the nodes a snapshot could
    not read."""
    longest = max((sc.watch for sc in session.topology.scenarios), default=0.0)
    if longest <= 0:
        return None
    step("watch")
    records = []
    for phase, started in watch_times(longest):
        session.check_signal()
        records.append(WatchRecord(phase, started))
        note(f"snapshot: {phase}", snapshot(session, phase))
    return records
