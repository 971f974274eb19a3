"""``lab run``: bring a topology up, run its services and scenarios, gather the evidence.

The flow, in one direction: up -> captures and "before" snapshots -> services (waited on
until they listen) -> scenarios (clients on their nodes, a "during" snapshot while held
connections are open) -> "after" snapshots (clients gone, servers still up) -> services
stopped -> "final" snapshots -> captures stopped -> artifacts fetched -> down.

What happened is written to ``run.json`` in the results folder: raw facts only (client
outputs, process ids, interfaces, errors). Judging them is ``lab.verdict.checks``'s job, so that
``lab report DIR`` can judge a folder again without re-running anything.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from lab.errors import Interrupted, LabError, UsageError
from lab.i18n import t, t_or
from lab.run.backends.base import Backend, Proc
from lab.run.clients import ClientSteps
from lab.run.collect import (
    CaptureHandle,
    snapshot,
    start_captures,
    stop_captures,
    wait_until,
)
from lab.run.nodebuild import build_on_nodes
from lab.run.record import (
    CaptureRecord,
    NodeError,
    NodeRecord,
    RestartRecord,
    RunRecord,
)
from lab.run.sealing import seal_results
from lab.run.services import ServiceSteps
from lab.run.session import Progress, Session
from lab.run.userbuild import (
    Built,
    build_all,
    keep_evidence,
)
from lab.run.watch import run_watch
from lab.spec.model import Restart, Scenario, Topology

TOPOLOGY_COPY = "topology.yaml"
FlowFactory = Callable[[Session, RunRecord, Progress, "dict[str, Built]"], "Flow"]


def run_lab(
    topology: Topology,
    backend_cls: type[Backend],
    out_dir: Path,
    *,
    progress: Progress | None = None,
    finish: Callable[[], None] | None = None,
    flow: FlowFactory | None = None,
    idle: Callable[[], None] | None = None,
) -> RunRecord:
    """Run the whole lab once. Always leaves run.json and the evidence gathered so far in
    ``out_dir`` and tears everything down; re-raises what stopped the run, if anything.

    ``finish`` (say, writing summary.json) runs after run.json is final, still inside the
    run's signal handling: a Ctrl-C then is acted on only once it has written its files.
    ``flow`` makes the steps' object: ``lab grade`` adds steps of its own to the run's, and
    the live lab (``lab.run.live``) splits them between ``lab up`` and ``lab down``.
    ``idle`` is called once the run only waits (its clients started, the "during"
    snapshot taken): work for later (``lab run`` imports its report) then costs the run
    nothing."""
    say = progress or (lambda _m: None)
    session = Session(topology, backend_cls, out_dir, progress=say)
    session.on_idle = idle
    built = _build_programs(session, say)
    record = RunRecord(
        run_id=session.run_id,
        topology=topology.name,
        backend=backend_cls.name,
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        out_dir=str(out_dir),
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if topology.text is not None:
            (out_dir / TOPOLOGY_COPY).write_text(topology.text, encoding="utf-8")
        elif topology.source is not None:
            shutil.copyfile(topology.source, out_dir / TOPOLOGY_COPY)
        record.save(out_dir)  # from the start: even a killed run leaves its id behind
        keep_evidence(built, out_dir)
    except OSError as exc:
        raise LabError(f"cannot write the results folder {out_dir}: {exc}") from exc

    def end(outcome: BaseException | None) -> None:
        _record_outcome(record, outcome)
        record.timings = dict(session.timings.values)
        record.teardown_errors = session.teardown_errors
        noted = {e.node for e in record.node_errors if e.step == "collect"}
        record.node_errors += [
            NodeError(node, "collect", error)
            for node, error in session.fetch_errors.items()
            if node not in noted  # the hook runs again if a signal came meanwhile
        ]
        record.save(out_dir)
        if finish is not None:
            finish()

    session.on_end = end
    try:
        with session:
            (flow or Flow)(session, record, say, built).run()
    finally:
        # However the run ended, the evidence is its owner's alone.
        for problem in seal_results(out_dir):
            say(t("warning.line", text=problem))
    return record


def _build_programs(session: Session, say: Progress) -> dict[str, Built]:
    """Build the user programs the topology runs, before anything else: a compile error
    (a ``TopologyError``, exit 2) leaves no node, no process and no results folder."""
    programs = session.topology.used_programs()
    if not programs:
        return {}
    root = session.backend.build_root()
    if root is None and session.backend.builds_on_nodes:
        return {}  # built on each node once it is up (``lab.run.nodebuild``)
    if root is None:
        names = ", ".join(p.name for p in programs)
        raise UsageError(
            f"user programs ({names}) are not yet supported on {session.backend.name}: "
            "use --backend netns, docker or ssh"
        )
    say(t("progress.building", programs=", ".join(p.name for p in programs)))
    try:
        return build_all(programs, root)
    except BaseException:
        session.backend.down()  # the run's folder, with what the builds left in it
        raise


def _record_outcome(record: RunRecord, outcome: BaseException | None) -> None:
    """What ended the run, in the record: the signal, or the error in one line."""
    if isinstance(outcome, Interrupted):
        record.interrupted = outcome.signal_name
        record.error = str(outcome)
    elif isinstance(outcome, LabError):
        record.error = str(outcome)
    elif outcome is not None:  # a bug or an unexpected library error: still on record
        record.error = f"{type(outcome).__name__}: {outcome}"


class Flow(ServiceSteps, ClientSteps):
    """The steps of one run; ``step`` names what is under way, for the record on failure."""

    def __init__(
        self, session: Session, record: RunRecord, say: Progress, built: dict[str, Built]
    ) -> None:
        self.s = session
        self.record = record
        self.say = say
        self.built = built
        self.captures: list[CaptureHandle] = []
        self.servers: dict[str, Proc] = {}
        self.checkpoint_failed = False

    def step(self, name: str) -> None:
        self.s.check_signal()
        self.record.failed_step = name  # cleared when the run completes
        self.checkpoint()
        self.say(t_or(f"step.{name}", name))

    def checkpoint(self) -> None:
        """Write run.json as the run stands: a run killed outright (SIGKILL, a power cut)
        leaves a folder that says how far it got, not the placeholder of its start. A
        folder that cannot be written to is said once and does not stop the run: run.json
        is written again as it ends, where the failure is reported."""
        try:
            self.record.save(self.s.out_dir)
        except OSError as exc:
            if not self.checkpoint_failed:
                path = self.s.out_dir / "run.json"
                self.say(t("warning.no_update", path=str(path), error=exc))
            self.checkpoint_failed = True

    def run(self) -> None:
        self.bring_up()
        with self.s.timings.measure("run"):
            self.start_all()
            self.step("scenarios")
            self.run_scenarios()
            self.run_restarts()
            self.settle()
            self.phase("after")
            self.record.watch = run_watch(self.s, self.step, self.node_errors)
            self.after_the_clients()
            self.step("stop")
            self.stop_services()
            self.phase("final")
            self.node_errors("stop", stop_captures(self.captures))
        self.step("collect")
        self.s.fetch_all()  # a node it cannot read is noted as the run ends
        self.record.failed_step = None

    def after_the_clients(self) -> None:
        """Steps a flow adds once the "after" snapshot is taken, its services still up
        (grading's hostile clients): none in a plain run."""

    def bring_up(self) -> None:
        """The nodes up, the user's programs built on them where they build there."""
        self.step("up")
        self.s.bring_up()
        if self.s.backend.builds_on_nodes and self.s.topology.used_programs():
            self.step("build")
            self.built = build_on_nodes(self.s, Path(self.record.out_dir), self.say)
        self.record.nodes = {n.name: self.node_record(n.name) for n in self.s.topology.nodes}
        self.checkpoint()

    def start_all(self) -> None:
        """Captures on every interface and the "before" snapshots, then the services. The
        snapshots need no capture and the captures no snapshot, so both are taken at once:
        on two cores that hides most of the one behind the other."""
        self.step("capture start")
        with ThreadPoolExecutor(max_workers=1) as pool:
            before = pool.submit(self.snapshot_nodes, "before")
            self.captures = start_captures(self.s)
            self.record.captures = [
                CaptureRecord(c.node, c.interface, c.network, c.file, c.proc.pid)
                for c in self.captures
            ]
            self.phase("before", before)
        self.step("services")
        self.start_services(self.s.topology.services)
        self.checkpoint()

    def node_record(self, node: str) -> NodeRecord:
        info = self.s.backend.node_info(node)
        return NodeRecord(dict(self.s.backend.interfaces(node)), host=info.get("host"))

    def phase(self, name: str, taken: Future[dict[str, str]] | None = None) -> None:
        """Snapshot every node. A run stopped here has failed in "snapshot: NAME";
        otherwise the step under way before goes on. A snapshot ``taken`` alongside that
        step (waited for here) ends it instead: the run is in "snapshot: NAME" until the
        next step, as its progress line says."""
        self.s.check_signal()
        outer, self.record.failed_step = self.record.failed_step, f"snapshot: {name}"
        self.say(t("progress.snapshot", name=name))
        errors = taken.result() if taken is not None else self.snapshot_nodes(name)
        self.node_errors(f"snapshot: {name}", errors)
        self.record.phases.append(name)
        if taken is None:
            self.record.failed_step = outer
        self.checkpoint()

    def snapshot_nodes(self, name: str) -> dict[str, str]:
        """Snapshot every node; the servers' nodes first, because their evidence (children,
        threads, held sockets) is what is checked, and on a large topology snapshotting
        every node can outlast a held connection."""
        servers = {s.node for s in self.s.topology.services}
        others = [n.name for n in self.s.topology.nodes if n.name not in servers]
        # One queue, the servers' nodes at its head: taken first, with no wait between.
        return snapshot(self.s, name, [*sorted(servers), *others])

    def node_errors(self, step: str, errors: dict[str, str]) -> None:
        """Note nodes that could not be read in a step; the run goes on with the others."""
        for node, error in sorted(errors.items()):
            self.record.node_errors.append(NodeError(node, step, error))
            self.say(t("warning.node", step=step, node=node, error=error))

    # -- restarts ------------------------------------------------------------------------
    def run_restarts(self) -> None:
        """Every scenario's ``restart`` list, in file order, once all clients are done."""
        for sc in self.s.topology.scenarios:
            for index, restart in enumerate(sc.restart, start=1):
                done = self.record.scenarios[sc.name]
                done.restarts = [*(done.restarts or []), self.restart(sc, index, restart)]
                self.checkpoint()

    def restart(self, sc: Scenario, index: int, restart: Restart) -> RestartRecord:
        """Stop the scenario's service, snapshot its node (the TIME_WAIT the new bind meets),
        start it again with or without SO_REUSEADDR, and wait until it listens or exits."""
        service = self.s.topology.service(sc.service)
        self.step(f"restart {service.name} ({sc.name} #{index})")
        old = self.servers.pop(service.name, None)
        stopped = old.stop(timeout=10.0) if old is not None else None
        phase = f"restart-{sc.name}-{index}"
        snapshot(self.s, phase, [service.node])
        again = service.with_option("reuseaddr", restart.reuseaddr)
        log = f"service-{service.name}-{sc.name}-{index}.log"
        proc = self.s.spawn(service.node, self.service_argv(again), log)

        def settled() -> bool:
            return not proc.running() or bool(self.listen_socket(again))

        wait_until(settled, timeout=20.0, what=f"service {service.name} to listen or exit")
        listen = self.listen_socket(again) if proc.running() else ""
        if listen:
            self.servers[service.name] = proc  # stopped with the others at the end
            info = self.record.services[service.name]
            info.restarted_as = [*(info.restarted_as or []), proc.pid]
        self.say(f"restart of {service.name}: {'listening' if listen else 'exited'}")
        return RestartRecord(
            service=service.name,
            reuseaddr=restart.reuseaddr,
            expect=restart.expect,
            stopped_status=stopped,
            snapshot=phase,
            pid=proc.pid,
            log=f"{service.node}/{log}",
            listening=bool(listen),
            listen_socket=listen,
            exit_status=None if listen else proc.wait(10.0),
        )
