"""Held connections last until the lab has looked at them: a "during" snapshot that comes
after the holds have run out (a busy machine) still sees a child per connection, because
the clients wait for their release file (lab.programs.hold); without it the same late look
finds the connections gone."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from lab.programs.hold import hold
from lab.report.summary import finish_run
from lab.run.backends.base import Completed
from lab.run.backends.netns import NetnsBackend
from lab.run.collect import SNAPSHOTS
from lab.run.runner import run_lab
from lab.spec.topology import load_topology
from tests.labcli import ROOT

LATE = 3.5  # seconds the "during" look is held back: longer than the default lab's 2 s holds


def test_hold_waits_for_its_release_file(tmp_path: Path) -> None:
    release = tmp_path / "released"
    threading.Timer(0.3, release.touch).start()
    hold(0.05, str(release))
    assert release.exists()  # it returned only once the file was there


def test_hold_gives_up_at_its_limit_and_without_a_file_only_sleeps(tmp_path: Path) -> None:
    missing = tmp_path / "never"
    hold(0.01, str(missing), limit=0.2)
    assert not missing.exists()
    hold(0.01, None)  # no release asked: returns after the hold alone
    hold(0, "")


class LateLook(NetnsBackend):
    """A netns backend whose first snapshot commands after the clients start come late."""

    strip_release = False

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.clients_started = False
        self.delayed: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        argv = list(argv)
        if "lab.programs.client" in argv:
            self.clients_started = True
            if self.strip_release and "--release" in argv:
                cut = argv.index("--release")
                del argv[cut : cut + 2]
        if argv and argv[0] in {a[0] for a in SNAPSHOTS.values()} and self.clients_started:
            with self.lock:
                first = (node, argv[0]) not in self.delayed
                self.delayed.add((node, argv[0]))
            if first:
                time.sleep(LATE)
        return super().run(node, argv, timeout=timeout, input=input)


class LateLookNoRelease(LateLook):
    strip_release = True


def _children_check(out: Path, backend: type[NetnsBackend]) -> tuple[bool, str]:
    topology = load_topology(ROOT / "topologies" / "default.yaml")
    os.environ["SOCKET_LAB_STATE"] = str(out.parent / "state")
    try:
        run_lab(topology, backend, out)
    finally:
        del os.environ["SOCKET_LAB_STATE"]
    summary = finish_run(out, topology)
    fork = next(s for s in summary.scenarios if s.name == "fork-echo")
    check = next(c for c in fork.checks if c.name == "one child per connection")
    return check.passed, check.detail


@pytest.mark.slow
def test_a_late_during_snapshot_still_sees_the_held_connections(root: None, tmp_path: Path) -> None:
    passed, evidence = _children_check(tmp_path / "released", LateLook)
    assert passed, evidence
    passed, evidence = _children_check(tmp_path / "unreleased", LateLookNoRelease)
    assert not passed, evidence  # the same late look, the holds not waiting: nothing to see
