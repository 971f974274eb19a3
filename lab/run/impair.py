"""A scenario's ``impair`` steps, while the scenarios run: each step's netem goes on at its
``start`` and the link is put back as the topology made it after its ``duration``. A
thread of its own keeps the times; ``stop`` puts back every link still changed, so that a
run that ends early, fails or is interrupted leaves each link as the topology said."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lab.errors import LabError
from lab.run.backends.base import Backend
from lab.run.record import ImpairRecord
from lab.spec.model import Topology
from lab.spec.netem import ImpairStep, Netem


@dataclass
class _Planned:
    step: ImpairStep
    record: ImpairRecord
    original: Netem | None  # what the topology gave the interface, put back at the end


def _original(topology: Topology, step: ImpairStep) -> Netem | None:
    for imp in topology.impairments:
        if (imp.node, imp.network, imp.direction) == (step.node, step.network, step.direction):
            return imp.netem
    return None


class Impairer:
    """Applies ``steps`` (with their records) on ``backend`` from ``start()`` on."""

    def __init__(
        self,
        backend: Backend,
        topology: Topology,
        steps: Sequence[tuple[ImpairStep, ImpairRecord]],
    ) -> None:
        self._backend = backend
        self._planned = [_Planned(s, r, _original(topology, s)) for s, r in steps]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def start(self) -> None:
        if not self._planned:
            return
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="impair", daemon=True)
        self._thread.start()

    def _now(self) -> float:
        return round(time.monotonic() - self._t0, 3)

    def _set(self, p: _Planned, netem: Netem | None) -> bool:
        # An all-zero netem is no impairment: the qdisc is removed rather than kept idle.
        chosen = None if netem == Netem() else netem
        try:
            self._backend.set_netem(p.step.node, p.step.network, p.step.direction, chosen)
        except LabError as exc:
            p.record.error = str(exc)
            return False
        return True

    def _run(self) -> None:
        events = sorted(
            [(p.step.start, 0, k) for k, p in enumerate(self._planned)]
            + [(p.step.start + p.step.duration, 1, k) for k, p in enumerate(self._planned)]
        )
        for at, kind, k in events:
            if self._stop.wait(max(0.0, at - (time.monotonic() - self._t0))):
                return
            with self._lock:
                p = self._planned[k]
                applying = kind == 0 and p.record.error is None
                restoring = kind == 1 and p.record.applied is not None
                if applying and self._set(p, p.step.netem):
                    p.record.applied = self._now()
                elif restoring and p.record.restored is None and self._set(p, p.original):
                    p.record.restored = self._now()

    def stop(self) -> None:
        """End the steps now: none starts any more, and every applied one is put back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self._lock:
            for p in self._planned:
                changed = p.record.applied is not None and p.record.restored is None
                if changed and self._set(p, p.original):
                    p.record.restored = self._now()

    def raise_errors(self) -> None:
        """A step that could not be applied or undone fails the run: its evidence would
        not show what the scenario says it does."""
        errors = [
            f"impair {p.step.node} {p.step.network} {p.step.direction}: {p.record.error}"
            for p in self._planned
            if p.record.error is not None
        ]
        if errors:
            raise LabError("; ".join(errors))
