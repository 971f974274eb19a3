"""The start barrier of a scenario's clients, the run's side (the client's side is
``lab.programs.barrier``).

Every client of a scenario says when it is ready, before connecting; none is told to go
until all are, so their held connections overlap however late one node's exec starts, and
the "during" snapshot sees them together. The wait is bounded: a client that never
starts, or ends before it is ready, stops the scenario's clients with a message naming
it, rather than leaving them to hold their connections alone.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

from lab.i18n import t
from lab.programs.barrier import GO
from lab.run.backends.base import Arrival

# Seconds a scenario's clients have, from its start, to be ready: a 250-client scenario
# takes about 30 s to start on two busy cores.
BARRIER_TIMEOUT = 60.0


class StartBarrier:
    """One scenario's barrier; its clients arrive from the threads that run them."""

    def __init__(
        self, scenario: str, nodes: Sequence[str], *, timeout: float, start_after: float = 0.0
    ) -> None:
        self.scenario = scenario
        self.timeout = timeout
        self.expected = frozenset(nodes)
        self.arrived: set[str] = set()
        self.start_after = start_after
        self.broken: str | None = None  # why the clients must not go
        # Counted from the scenario's start: its clients may start earlier, and wait.
        self._deadline: float | None = None
        self._cond = threading.Condition()

    def arrival(self, node: str) -> Arrival:
        """What the backend calls once the client on ``node`` says it is ready."""
        return lambda: self.arrive(node)

    def release(self) -> None:
        """The scenario starts: its clients go once all are ready."""
        with self._cond:
            self._deadline = time.monotonic() + self.start_after + self.timeout
            self._cond.notify_all()

    def arrive(self, node: str) -> str:
        """The client on ``node`` is ready: wait for the scenario's start and the other
        clients; the line to answer it."""
        with self._cond:
            self.arrived.add(node)
            self._cond.notify_all()
            # Bounded even before the scenario starts: a run that neither starts it nor
            # closes the barrier (a bug) must not keep its clients' threads forever.
            if not self._settle(time.monotonic() + 2 * self.timeout + self.start_after):
                self._break(t("error.barrier_stopped", scenario=self.scenario))
            return GO if self.broken is None else self.broken

    def depart(self, node: str, why: str) -> None:
        """The client on ``node`` has ended (``why``): if it never arrived, the others
        cannot wait for it."""
        with self._cond:
            if node not in self.arrived:
                self._break(t("error.barrier_ended", scenario=self.scenario, node=node, why=why))

    def close(self) -> None:
        """The run is stopping: release every client still waiting, telling it not to go."""
        with self._cond:
            if not self.is_open:
                self._break(t("error.barrier_stopped", scenario=self.scenario))

    def settle(self, most: float) -> bool:
        """Wait at most ``most`` seconds for the barrier to open or break; whether it did."""
        with self._cond:
            return self._settle(time.monotonic() + most)

    def _settle(self, until: float) -> bool:
        while self.broken is None and not self.is_open:
            now = time.monotonic()
            deadline = math.inf if self._deadline is None else self._deadline
            if now >= deadline:
                missing = ", ".join(sorted(self.expected - self.arrived))
                said = t(
                    "error.barrier_timeout",
                    scenario=self.scenario,
                    nodes=missing,
                    timeout=self.timeout,
                )
                self._break(said)
            elif now >= until:
                return False
            else:
                wait = min(until, deadline) - now
                self._cond.wait(None if wait == math.inf else wait)
        return True

    @property
    def is_open(self) -> bool:
        return self._deadline is not None and self.expected <= self.arrived

    def _break(self, why: str) -> None:
        if self.broken is None:
            self.broken = " ".join(why.split())  # one line: it is written to the clients
            self._cond.notify_all()
