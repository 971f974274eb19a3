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

import json
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import BackendError, Interrupted, LabError
from lab.run.backends.base import Backend, Proc
from lab.run.collect import (
    CaptureHandle,
    read_node_file,
    snapshot,
    start_captures,
    stop_captures,
    wait_until,
)
from lab.run.record import RUN_SCHEMA_VERSION
from lab.run.session import Progress, Session
from lab.spec.model import Restart, Scenario, Service, Topology

CLIENT_REPLY_TIMEOUT = 10.0  # seconds a client waits for each reply
RUN_FILE = "run.json"
TOPOLOGY_COPY = "topology.yaml"


@dataclass
class RunRecord:
    """The raw facts of one run, saved as run.json."""

    run_id: str
    topology: str
    backend: str
    started: str
    out_dir: str
    timings: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: list[dict[str, Any]] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    error: str | None = None
    teardown_errors: list[str] = field(default_factory=list)
    failed_step: str | None = None
    interrupted: str | None = None
    # Nodes that could not be read (gone mid-run): {"node", "step", "error"} each.
    node_errors: list[dict[str, str]] = field(default_factory=list)

    def save(self, out_dir: Path) -> None:
        # After an interrupt a client's thread may still record its outcome meanwhile
        # ("dictionary changed size during iteration"): take the picture again.
        for attempt in range(5):
            try:
                doc = {"schema_version": RUN_SCHEMA_VERSION, **self.__dict__}
                text = json.dumps(doc, indent=2, ensure_ascii=False)
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        (out_dir / RUN_FILE).write_text(text)


def default_out_dir(topology: Topology) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path("results") / f"{topology.name}-{stamp}"


def run_lab(
    topology: Topology,
    backend_cls: type[Backend],
    out_dir: Path,
    *,
    progress: Progress | None = None,
    finish: Callable[[], None] | None = None,
) -> RunRecord:
    """Run the whole lab once. Always leaves run.json and the evidence gathered so far in
    ``out_dir`` and tears everything down; re-raises what stopped the run, if anything.

    ``finish`` (say, writing summary.json) runs after run.json is final, still inside the
    run's signal handling: a Ctrl-C then is acted on only once it has written its files."""
    say = progress or (lambda _m: None)
    session = Session(topology, backend_cls, out_dir, progress=say)
    record = RunRecord(
        run_id=session.run_id,
        topology=topology.name,
        backend=backend_cls.name,
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        out_dir=str(out_dir),
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if topology.source is not None:
            shutil.copyfile(topology.source, out_dir / TOPOLOGY_COPY)
        record.save(out_dir)  # from the start: even a killed run leaves its id behind
    except OSError as exc:
        raise LabError(f"cannot write the results folder {out_dir}: {exc}") from exc

    def end(outcome: BaseException | None) -> None:
        _record_outcome(record, outcome)
        record.timings = dict(session.timings.values)
        record.teardown_errors = session.teardown_errors
        noted = {e["node"] for e in record.node_errors if e["step"] == "collect"}
        record.node_errors += [
            {"node": node, "step": "collect", "error": error}
            for node, error in session.fetch_errors.items()
            if node not in noted  # the hook runs again if a signal came meanwhile
        ]
        record.save(out_dir)
        if finish is not None:
            finish()

    session.on_end = end
    with session:
        _Flow(session, record, say).run()
    return record


def _client_knobs(sc: Scenario) -> list[str]:
    """The line client's flags for a scenario's repeat, rcvbuf and pause_reading."""
    argv = ["--repeat", str(sc.repeat)] if sc.repeat > 1 else []
    argv += ["--rcvbuf", str(sc.rcvbuf)] if sc.rcvbuf else []
    argv += ["--pause-reading", str(sc.pause_reading)] if sc.pause_reading > 0 else []
    return argv


def _record_outcome(record: RunRecord, outcome: BaseException | None) -> None:
    """What ended the run, in the record: the signal, or the error in one line."""
    if isinstance(outcome, Interrupted):
        record.interrupted = outcome.signal_name
        record.error = str(outcome)
    elif isinstance(outcome, LabError):
        record.error = str(outcome)
    elif outcome is not None:  # a bug or an unexpected library error: still on record
        record.error = f"{type(outcome).__name__}: {outcome}"


class _Flow:
    """The steps of one run; ``step`` names what is under way, for the record on failure."""

    def __init__(self, session: Session, record: RunRecord, say: Progress) -> None:
        self.s = session
        self.record = record
        self.say = say
        self.captures: list[CaptureHandle] = []
        self.servers: dict[str, Proc] = {}

    def step(self, name: str) -> None:
        self.s.check_signal()
        self.record.failed_step = name  # cleared when the run completes
        self.say(name)

    def run(self) -> None:
        self.step("up")
        self.s.bring_up()
        self.record.nodes = {
            n.name: {
                "interfaces": dict(self.s.backend.interfaces(n.name)),
                **self.s.backend.node_info(n.name),
            }
            for n in self.s.topology.nodes
        }
        with self.s.timings.measure("run"):
            self.step("capture start")
            self.captures = start_captures(self.s)
            self.record.captures = [
                {
                    "node": c.node,
                    "interface": c.interface,
                    "network": c.network,
                    "file": c.file,
                    "pid": c.proc.pid,
                }
                for c in self.captures
            ]
            self.phase("before")
            self.step("services")
            for service in self.s.topology.services:
                self.start_service(service)
            self.step("scenarios")
            self.run_scenarios()
            self.run_restarts()
            self.settle()
            self.phase("after")
            self.step("stop")
            for name, proc in self.servers.items():
                self.stop_service(name, proc)
            self.phase("final")
            self.node_errors("stop", stop_captures(self.captures))
        self.step("collect")
        self.s.fetch_all()  # a node it cannot read is noted as the run ends
        self.record.failed_step = None

    def phase(self, name: str) -> None:
        """Snapshot every node; the servers' nodes first, because their evidence (children,
        threads, held sockets) is what is checked, and on a large topology snapshotting
        every node can outlast a held connection. A run stopped here has failed in
        "snapshot: NAME"; otherwise the step under way before goes on."""
        self.s.check_signal()
        outer, self.record.failed_step = self.record.failed_step, f"snapshot: {name}"
        self.say(f"snapshot: {name}")
        servers = {s.node for s in self.s.topology.services}
        others = [n.name for n in self.s.topology.nodes if n.name not in servers]
        errors = snapshot(self.s, name, sorted(servers))
        errors.update(snapshot(self.s, name, others))
        self.node_errors(f"snapshot: {name}", errors)
        self.record.phases.append(name)
        self.record.failed_step = outer

    def node_errors(self, step: str, errors: dict[str, str]) -> None:
        """Note nodes that could not be read in a step; the run goes on with the others."""
        for node, error in sorted(errors.items()):
            self.record.node_errors.append({"node": node, "step": step, "error": error})
            self.say(f"warning: {step}: {node}: {error}")

    def stop_service(self, name: str, proc: Proc) -> None:
        """Stop a service, noting whether it was still running: one that ended on its own
        (crashed, or killed from outside) is a fault of the run, not a clean stop."""
        info = self.record.services[name]
        info["ended_before_stop"] = not proc.running()
        info["exit_status"] = proc.stop(timeout=10.0)

    # -- services ------------------------------------------------------------------------
    def start_service(self, service: Service) -> None:
        log = f"service-{service.name}.log"
        argv = self.s.program(service.program, service.args())
        proc = self.s.spawn(service.node, argv, log)
        self.servers[service.name] = proc
        self.record.services[service.name] = {
            "node": service.node,
            "program": service.program,
            "port": service.port,
            "protocol": service.protocol,
            "options": dict(service.options),
            "pid": proc.pid,
            "log": f"{service.node}/{log}",
        }

        def listening() -> bool:
            if not proc.running():
                text = read_node_file(self.s, service.node, self.s.workdir(service.node) / log)
                raise BackendError(
                    f"service {service.name} ({service.program}) on {service.node} exited "
                    f"before listening: {text.strip()[-500:]}"
                )
            return bool(self.listen_socket(service))

        wait_until(listening, timeout=20.0, what=f"service {service.name} to listen")
        self.say(f"service {service.name} listening on {service.node}:{service.port}")

    def listen_socket(self, service: Service) -> str:
        """The service's listening socket as ``ss`` shows it on its node, "" if none."""
        flag = "-Hlnt" if service.protocol == "tcp" else "-Hlnu"
        probe = ["ss", flag, "sport", "=", f":{service.port}"]
        return self.s.run(service.node, probe, timeout=10.0).stdout.strip()

    # -- restarts ------------------------------------------------------------------------
    def run_restarts(self) -> None:
        """Every scenario's ``restart`` list, in file order, once all clients are done."""
        for sc in self.s.topology.scenarios:
            for index, restart in enumerate(sc.restart, start=1):
                entry = self.restart(sc, index, restart)
                self.record.scenarios[sc.name].setdefault("restarts", []).append(entry)

    def restart(self, sc: Scenario, index: int, restart: Restart) -> dict[str, Any]:
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
        proc = self.s.spawn(service.node, self.s.program(again.program, again.args()), log)

        def settled() -> bool:
            return not proc.running() or bool(self.listen_socket(again))

        wait_until(settled, timeout=20.0, what=f"service {service.name} to listen or exit")
        listen = self.listen_socket(again) if proc.running() else ""
        if listen:
            self.servers[service.name] = proc  # stopped with the others at the end
            self.record.services[service.name].setdefault("restarted_as", []).append(proc.pid)
        self.say(f"restart of {service.name}: {'listening' if listen else 'exited'}")
        return {
            "service": service.name,
            "reuseaddr": restart.reuseaddr,
            "expect": restart.expect,
            "stopped_status": stopped,
            "snapshot": phase,
            "pid": proc.pid,
            "log": f"{service.node}/{log}",
            "listening": bool(listen),
            "listen_socket": listen,
            "exit_status": None if listen else proc.wait(10.0),
        }

    # -- scenarios -----------------------------------------------------------------------
    def run_scenarios(self) -> None:
        topo = self.s.topology
        jobs = [(sc, node) for sc in topo.scenarios for node in sc.clients]
        for sc in topo.scenarios:
            self.record.scenarios[sc.name] = {"service": sc.service, "clients": {}}
        if not jobs:
            self.phase("during")
            return
        pool = ThreadPoolExecutor(max_workers=min(len(jobs), 64))
        try:
            futures = [pool.submit(self.run_client, sc, node) for sc, node in jobs]
            self.wait_for_held_connections()
            self.phase("during")
            for done, future in enumerate(futures, start=1):
                future.result()
                self.say(f"clients finished: {done}/{len(jobs)}")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def client_argv(self, sc: Scenario, node: str) -> list[str]:
        service = self.s.topology.service(sc.service)
        target = str(self.s.topology.target_address(service, node))
        if sc.probe is not None:
            port = str(self.s.topology.scenario_port(sc))
            probe = [sc.probe, "--host", target, "--port", port, "--json", "--attempts", "10"]
            return self.s.program("probe", [*probe, "--timeout", str(CLIENT_REPLY_TIMEOUT)])
        n = str(sc.concurrency)
        common = ["--host", target, "--port", str(service.port), "--count", n, "--json"]
        common += ["--timeout", str(CLIENT_REPLY_TIMEOUT)]
        sends = [arg for line in sc.send for arg in ("--send", line)]
        if service.protocol == "udp":
            return self.s.program("udp_echo", ["client", *common, *sends])
        extra = ["--concurrency", n, "--hold", str(sc.hold)]
        if sc.half_close:
            extra.append("--half-close")
        extra += _client_knobs(sc)
        return self.s.program("client", [*common, *extra, *sends])

    def run_client(self, sc: Scenario, node: str) -> None:
        """Run one client to its end and record it. A client that cannot run or dies (its
        node gone, its command timed out) is recorded with the reason, not raised: the
        other clients, the snapshots and the collection go on, and the checks say why."""
        if sc.start_after > 0:
            # Scenarios start together; this one joins later (e.g. while another holds
            # the only connection an iterative server serves).
            time.sleep(sc.start_after)
        timeout = 30.0 + sc.hold + sc.pause_reading + CLIENT_REPLY_TIMEOUT * len(sc.send)
        if sc.probe is not None:  # a connect and a wait for the server's close, each bounded
            timeout += 2 * CLIENT_REPLY_TIMEOUT
        clients = self.record.scenarios[sc.name]["clients"]
        try:
            result = self.s.run(node, self.client_argv(sc, node), timeout=timeout)
        except BackendError as exc:
            clients[node] = {"returncode": None, "result": None, "stderr": "", "error": str(exc)}
            self.say(f"warning: client of {sc.name} on {node}: {exc}")
            return
        try:
            parsed: Any = json.loads(result.stdout)
        except ValueError:
            parsed = None
        clients[node] = {
            "returncode": result.returncode,
            "result": parsed,
            "stderr": result.stderr[-2000:],
            "error": None if parsed is not None else _no_result(result.returncode, result.stderr),
        }

    def wait_for_held_connections(self) -> None:
        """Block until every held connection is ESTABLISHED on its server, so that the
        "during" snapshot shows them; give up (and let the checks say so) after a while."""
        expected: dict[str, int] = {}
        for sc in self.s.topology.scenarios:
            service = self.s.topology.service(sc.service)
            if sc.hold > 0 and service.protocol == "tcp":
                expected[sc.service] = expected.get(sc.service, 0) + sc.total_connections
        if not expected:
            return
        shortest_hold = min(sc.hold for sc in self.s.topology.scenarios if sc.hold > 0)

        def established() -> bool:
            for name, count in expected.items():
                if not self.accepted(self.s.topology.service(name), count):
                    return False
            return True

        try:
            wait_until(established, timeout=max(shortest_hold, 5.0), what="held connections")
        except BackendError as exc:
            self.say(f"warning: {exc}")

    def accepted(self, service: Service, count: int) -> bool:
        """At least ``count`` connections are ESTABLISHED on the service and its accept
        queue is empty. ss counts a connection as ESTABLISHED while it still waits in the
        queue, before the server has accepted it (and forked or started a thread for it)."""
        port = f":{service.port}"
        est = ["ss", "-Htn", "state", "established", "sport", "=", port]
        if len(self.s.run(service.node, est, timeout=10.0).stdout.splitlines()) < count:
            return False
        listen = self.s.run(service.node, ["ss", "-Hltn", "sport", "=", port], timeout=10.0)
        # LISTEN rows: State Recv-Q Send-Q ...; for a listener Recv-Q is the accept queue.
        return all(line.split()[1] == "0" for line in listen.stdout.splitlines())

    def settle(self) -> None:
        """After the clients: wait until every fork server's children have exited, so the
        "after" snapshot shows reaping (or, with --no-reap, the zombies) and not a child
        that is still closing."""
        for name, proc in self.servers.items():
            service = self.s.topology.service(name)
            if service.program != "fork_server":
                continue
            probe = ["ps", "-o", "stat=", "--ppid", str(proc.pid)]

            def children_exited(node: str = service.node, probe: list[str] = probe) -> bool:
                states = self.s.run(node, probe, timeout=10.0).stdout.split()
                return all(state.startswith("Z") for state in states)

            try:
                wait_until(children_exited, timeout=10.0, what=f"{name}'s children to exit")
            except BackendError as exc:
                self.say(f"warning: {exc}")


def _no_result(returncode: int, stderr: str) -> str:
    """Why a client printed no result, in a few words."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    last = stderr.strip().splitlines()[-1:]
    return f"exit status {returncode}" + (f": {last[0]}" if last else ", no output")
