"""The compose node's snapshots, as ``lab run`` takes them (``lab.run.collect``,
``lab.run.watch``, ``lab.run.portrange``; ``lab.programs.compose_node`` takes them in):

- each phase's ``netstat``, ``ss`` and ``ps`` into ``snapshots/PHASE.KIND.txt``: "during"
  once the held connections are served (``--held``), from the first of them on for as
  long as ``lab run`` waits from its clients' start (``--held-timeout``: the client nodes
  start theirs when they have seen every node listen, seconds later on a busy host);
  "after" once the servers' children have exited;
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
import contextlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from lab.programs.supervise import SuperviseError, say
from lab.programs.supervise_children import Child

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
SETTLE_TIMEOUT = 10.0
REAP_GRACE = 1.0  # seconds a server that reaps may take to do it


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
    servers: dict[str, Child]
    note: Callable[[str, str], None]
    wait_for: Callable[..., None]
    mark: Callable[[str], None]
    wait_all: Callable[..., None]

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

    def wait_held(self) -> None:
        """Until this node's held connections are established and served, then until the
        other serving nodes' are: the "during" snapshot is taken while they are held. The
        clock starts at the first connection (or once every client node's clients have
        ended without one), and one wait covers all the node's ports (a wait for each
        port in turn, each with its own timeout, let the others' holds end first)."""
        waits = [self.held_wait(spec) for spec in self.args.held]
        if waits:
            ports = [spec.split(":")[1] for spec in self.args.held]
            try:
                self.wait_for(
                    lambda: any(map(connected, ports)) or self.clients_ended(),
                    self.args.step_timeout,
                    "a first held connection",
                )
                self.wait_for(
                    lambda: all(wait() for wait in waits),
                    self.args.held_timeout,
                    f"the held connections on {', '.join(ports)}",
                )
            except SuperviseError as exc:
                say(f"warning: {exc}")  # as lab run: the checks say what the snapshot shows
            self.mark("held")
        # The serving nodes mark it once their own waits end (or fail, and say so).
        self.wait_all("held", nodes_of(self.args.held_nodes), self.args.step_timeout)

    def clients_ended(self) -> bool:
        """Every client node's clients have ended (or the node failed)."""
        return all(
            any((self.args.sync / f"{step}.{node}").exists() for step in ("ran", "failed"))
            for node in nodes_of(self.args.client_nodes)
        )

    def held_wait(self, spec: str) -> Callable[[], bool]:
        """Whether the connections of one ``--held`` (tcp:PORT:COUNT:SERVICE) are held: and
        served by as many children or threads when SERVICE is given."""
        _, port, count, job = spec.split(":")
        server = self.servers.get(job)
        pid = server.proc.pid if server is not None else None
        return lambda: held(port, int(count)) and (pid is None or serving(pid) >= int(count))

    def settle(self) -> None:
        """Until the servers' children have exited (or are zombies, if not reaped), so the
        "after" snapshot shows how they were reaped, not a child still closing; then, for
        a moment, until the zombies are reaped: a server that reaps does it as the
        SIGCHLD arrives, and the snapshot here follows at once (in ``lab run`` the latency
        of reaching a node covers that moment). A server that does not reap keeps them."""
        for name, child in self.servers.items():
            probe = ["ps", "-o", "stat=", "--ppid", str(child.proc.pid)]

            def states(probe: list[str] = probe) -> list[str]:
                run = subprocess.run(probe, capture_output=True, text=True, check=False)
                return run.stdout.split()

            try:
                self.wait_for(
                    lambda: all(s.startswith("Z") for s in states()),
                    SETTLE_TIMEOUT,
                    f"{name}'s children to exit",
                )
            except SuperviseError as exc:
                self.note("settle", str(exc))
                continue
            with contextlib.suppress(SuperviseError):
                self.wait_for(lambda: not states(), REAP_GRACE, f"{name}'s children reaped")


def nodes_of(text: str) -> list[str]:
    return [n for n in text.split(",") if n]


def established(port: str) -> list[str]:
    argv = ["ss", "-Htn", "state", "established", "sport", "=", f":{port}"]
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.splitlines()


def connected(port: str) -> bool:
    return bool(established(port))


def held(port: str, count: int) -> bool:
    """``count`` connections ESTABLISHED on ``port`` and none waiting to be accepted (as
    ``lab.run.clients`` waits for them)."""
    if len(established(port)) < count:
        return False
    listen = ["ss", "-Hltn", "sport", "=", f":{port}"]
    out = subprocess.run(listen, capture_output=True, text=True, check=False).stdout
    return all(line.split()[1] == "0" for line in out.splitlines())


def serving(pid: int) -> int:
    """Connections a fork or thread server can be serving: its children and its threads
    besides the one that accepts."""
    argv = ["ps", "-o", "nlwp=", "-p", str(pid)]
    threads = subprocess.run(argv, capture_output=True, text=True, check=False).stdout.split()
    argv = ["ps", "-o", "pid=", "--ppid", str(pid)]
    children = subprocess.run(argv, capture_output=True, text=True, check=False).stdout.split()
    return len(children) + (int(threads[0]) - 1 if threads and threads[0].isdigit() else 0)
