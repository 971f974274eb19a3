"""The compose node's snapshots, as ``lab run`` takes them (``lab.run.collect``,
``lab.run.watch``, ``lab.run.portrange``; ``lab.programs.compose_node`` takes them in):

- each phase's ``netstat``, ``ss`` and ``ps`` into ``snapshots/PHASE.KIND.txt``;
- with ``--port-range`` (a client of a scenario that claims ``ephemeral-ports``), the
  kernel's ephemeral port range with the "before" ones, into ``before.portrange.txt``;
- with ``--watch SECONDS`` (a scenario's ``watch``), ``watch-001``, ``watch-002``, ...
  every 2 s after "after" until SECONDS have passed. Every node paces them from the same
  moment, the last node's "after" marker, so that one round of snapshots is taken on all
  nodes at once, as ``lab run`` takes it; each is kept with the time it began, for run.json.

Standard library only: this runs inside the node image.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from lab.programs.supervise import say

# The snapshot commands of ``lab.run.collect.SNAPSHOTS`` (a test keeps them the same).
SNAPSHOTS: dict[str, list[str]] = {
    "netstat": ["netstat", "-tanup"],
    "ss": ["ss", "-tanpi"],
    "ps": ["ps", "-e", "-o", "pid=,ppid=,stat=,nlwp=,args="],
}
# As ``lab.run.portrange`` reads it (a test keeps them the same).
PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
PORT_RANGE_PHASE, PORT_RANGE_KIND = "before", "portrange"
WATCH_EVERY = 2.0  # seconds, as ``lab.run.watch.WATCH_EVERY`` (a test keeps them the same)


def add_snapshot_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port-range", action="store_true", help="read the ephemeral port range with 'before'"
    )
    parser.add_argument(
        "--watch", type=float, default=0.0, help="seconds of snapshots every 2 s after 'after'"
    )


def watch_phases(longest: float, every: float = WATCH_EVERY) -> list[tuple[str, float]]:
    """``(phase, seconds after the start)`` of each watch snapshot, as ``lab run`` takes
    them: ``watch-001`` one period after the start, until ``longest`` seconds."""
    out = []
    k = 1
    while k * every <= longest + 1e-9:  # (5 * 0.01 > 0.05 in floating point)
        out.append((f"watch-{k:03d}", k * every))
        k += 1
    return out


def marked_at(sync: Path, step: str) -> float | None:
    """The latest time the nodes' ``step`` markers hold (None without any)."""
    times = []
    for marker in sync.glob(f"{step}.*"):
        try:
            times.append(float(marker.read_text().strip()))
        except (OSError, ValueError):
            continue
    return max(times, default=None)


class NodeSnapshots:
    """Snapshots of the node; ``PhasedNode`` supplies the rest."""

    args: argparse.Namespace
    out_dir: Path | None
    phases: list[str]
    watched: list[dict[str, object]]
    note: Callable[[str, str], None]
    wait_for: Callable[..., None]

    def snapshot(self, phase: str) -> None:
        """Every snapshot command of a phase (and the port range with "before")."""
        self.take(phase)
        if phase == PORT_RANGE_PHASE and self.args.port_range:
            self.read_port_range()
        self.phases.append(phase)
        say(f"snapshot: {phase}")

    def take(self, phase: str) -> None:
        assert self.out_dir is not None
        folder = self.out_dir / "snapshots"
        folder.mkdir(parents=True, exist_ok=True)
        for kind, argv in SNAPSHOTS.items():
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
            if done.returncode != 0 and not done.stdout.strip():
                self.note(f"snapshot: {phase}", f"{kind}: exit status {done.returncode}")
                continue
            text = done.stdout if done.returncode == 0 else done.stdout + done.stderr
            (folder / f"{phase}.{kind}.txt").write_text(text)

    def read_port_range(self) -> None:
        assert self.out_dir is not None
        target = self.out_dir / "snapshots" / f"{PORT_RANGE_PHASE}.{PORT_RANGE_KIND}.txt"
        try:
            target.write_text(Path(PORT_RANGE_FILE).read_text())
        except OSError as exc:
            self.note(f"snapshot: {PORT_RANGE_PHASE}", f"{PORT_RANGE_KIND}: {exc}")

    def watch(self) -> None:
        """The watch snapshots, paced from the last node's "after" marker."""
        rounds = watch_phases(self.args.watch)
        if not rounds:
            return
        start = marked_at(self.args.sync, "after") or time.time()
        say(f"watching: a snapshot every {WATCH_EVERY:g} s for {self.args.watch:g} s")
        for phase, offset in rounds:
            due = start + offset
            self.wait_for(lambda due=due: time.time() >= due, offset + 60.0, f"{phase}'s time")
            self.watched.append({"phase": phase, "time": time.time()})
            self.take(phase)
        say(f"snapshot: {rounds[-1][0]} (the last of the watch)")
