"""The scenarios' step of ``lab run``: every client on its node at once, recorded as it
ends, and the wait for held connections so that the "during" snapshot shows them."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath

from lab.errors import BackendError
from lab.i18n import t
from lab.programs.hold import RELEASE_WAIT
from lab.run.backends.base import Proc
from lab.run.collect import wait_until
from lab.run.impair import Impairer
from lab.run.record import (
    ClientRecord,
    ClientResult,
    ImpairRecord,
    ProbeResult,
    RunRecord,
    ScenarioRecord,
    parse_client_output,
)
from lab.run.session import Progress, Session
from lab.run.userbuild import Built, command
from lab.spec.codec import RecordError
from lab.spec.model import Scenario, Service

# Seconds at most between two looks for the held connections: the "during" snapshot waits
# on them, and every look is an `ss` run on each server's node.
HELD_PROBE_EVERY = 0.05
# Client commands running at once. Every client of a run must be able to hold its
# connections at the same time (the "during" snapshot shows them all): a 250-client
# topology with two scenarios needs 500. Each is a thread that waits on its command.
MAX_CLIENTS = 1024
# After the "during" snapshot the lab makes this file on every holding client's node: the
# clients hold their connections until then (lab.programs.hold), however late it comes.
RELEASE_FILE = "released"
# Seconds the "during" snapshot waits at most for every held connection. The holds last
# until the lab has looked, so a long wait costs nothing on a quiet machine and lets a busy
# one (clients whose start took seconds) still show them all.
HELD_WAIT = 30.0


class ClientSteps:
    """The scenario steps of a run; the run's flow supplies ``phase`` (a snapshot)."""

    s: Session
    record: RunRecord
    say: Progress
    built: dict[str, Built]
    servers: dict[str, Proc]  # the running services, by name (the run's flow keeps them)

    def phase(self, name: str) -> None:
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Write run.json as it stands (the run's flow does; nothing by default)."""

    release_round = 0  # a live lab runs scenarios again: each time its own release file

    def run_scenarios(self) -> None:
        topo = self.s.topology
        jobs = [(sc, node) for sc in topo.scenarios for node in sc.clients]
        self.release_round += 1
        for sc in topo.scenarios:
            self.record.scenarios[sc.name] = ScenarioRecord(sc.service)
        self.checkpoint()
        if not jobs:
            self.phase("during")
            return
        impairer = self.impairer()
        pool = ThreadPoolExecutor(max_workers=min(len(jobs), MAX_CLIENTS))
        try:
            impairer.start()
            futures = [pool.submit(self.run_client, sc, node) for sc, node in jobs]
            self.wait_for_held_connections()
            self.phase("during")
            self.release_holds()
            self.s.idle()
            for done, future in enumerate(futures, start=1):
                future.result()
                # One run.json for the clients that ended together, not one each.
                if done == len(futures) or not futures[done].done():
                    self.checkpoint()
                self.say(t("progress.clients_finished", done=done, total=len(jobs)))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            impairer.stop()
            self.checkpoint()
        impairer.raise_errors()

    def impairer(self) -> Impairer:
        """The scenarios' ``impair`` steps, each with its record in run.json."""
        steps = []
        for sc in self.s.topology.scenarios:
            records = [
                ImpairRecord(st.node, st.network, st.direction, st.netem.describe())
                for st in sc.impair
            ]
            if records:
                self.record.scenarios[sc.name].impair = records
            steps += list(zip(sc.impair, records, strict=True))
        return Impairer(self.s.backend, self.s.topology, steps)

    def client_argv(self, sc: Scenario, node: str) -> list[str]:
        service = self.s.topology.service(sc.service)
        target = str(self.s.topology.target_address(service, node))
        if sc.probe is not None:
            port = str(self.s.topology.scenario_port(sc))
            probe = [sc.probe, "--host", target, "--port", port, "--json", "--attempts", "10"]
            return self.s.program("probe", [*probe, "--timeout", str(sc.reply_timeout)])
        n = str(sc.concurrency)
        if sc.client_program is not None:
            return self.user_client_argv(sc, node, target, service)
        common = ["--host", target, "--port", str(service.port), "--count", n, "--json"]
        common += ["--timeout", str(sc.reply_timeout)]
        sends = [arg for line in sc.send for arg in ("--send", line)]
        if service.protocol == "udp":
            return self.s.program("udp_echo", ["client", *common, *sends])
        extra = ["--concurrency", n, "--hold", str(sc.hold), *self.release_args(sc, node)]
        if sc.half_close:
            extra.append("--half-close")
        extra += _client_knobs(sc)
        return self.s.program("client", [*common, *extra, *sends])

    def user_client_argv(self, sc: Scenario, node: str, target: str, service: Service) -> list[str]:
        """``lab.programs.userclient`` driving the user's client program (bounded)."""
        name = sc.client_program or ""
        run = self.s.topology.program(name).argv(target, service.port, client=True)
        inner = command(self.s.backend.python, self.built[name], node, run, self.s.user_uid())
        args = ["--host", target, "--port", str(service.port), "--name", name]
        args += ["--count", str(sc.concurrency), "--hold", str(sc.hold)]
        args += self.release_args(sc, node)
        args += ["--timeout", str(sc.reply_timeout), "--protocol", service.protocol]
        args += [arg for line in sc.send for arg in ("--send", line)]
        return self.s.program("userclient", [*args, "--", *inner])

    def run_client(self, sc: Scenario, node: str) -> None:
        """Run one client to its end and record it. A client that cannot run or dies (its
        node gone, its command timed out) is recorded with the reason, not raised: the
        other clients, the snapshots and the collection go on, and the checks say why."""
        if sc.start_after > 0:
            # Scenarios start together; this one joins later (e.g. while another holds
            # the only connection an iterative server serves).
            time.sleep(sc.start_after)
        timeout = 30.0 + sc.hold + sc.pause_reading + sc.reply_timeout * len(sc.send)
        if self.release_args(sc, node):
            timeout += RELEASE_WAIT
        if sc.probe is not None:  # a connect and a wait for the server's close, each bounded
            timeout += 2 * sc.reply_timeout
        clients = self.record.scenarios[sc.name].clients
        try:
            result = self.s.run(node, self.client_argv(sc, node), timeout=timeout)
        except BackendError as exc:
            clients[node] = ClientRecord(None, None, "", str(exc))
            self.say(t("warning.client", scenario=sc.name, node=node, error=exc.text()))
            return
        parsed: ClientResult | ProbeResult | None
        try:
            parsed = parse_client_output(result.stdout)
        except (ValueError, RecordError):
            parsed = None
        why = None if parsed is not None else _no_result(result.returncode, result.stderr)
        clients[node] = ClientRecord(result.returncode, parsed, result.stderr[-2000:], why)

    def release_path(self, node: str) -> PurePosixPath:
        return self.s.workdir(node) / f"{RELEASE_FILE}-{self.release_round}"

    def release_args(self, sc: Scenario, node: str) -> list[str]:
        """``--release FILE`` for a client that holds TCP connections, else nothing."""
        if sc.hold <= 0 or self.s.topology.service(sc.service).protocol != "tcp":
            return []
        return ["--release", str(self.release_path(node))]

    def release_holds(self) -> None:
        """Tell the holding clients that the lab has looked: their release file, on each
        of their nodes at once. A node that cannot be told is said; its clients hold at
        most RELEASE_WAIT seconds more."""
        topo = self.s.topology
        nodes = sorted({n for sc in topo.scenarios for n in sc.clients if self.release_args(sc, n)})

        def one(node: str) -> None:
            try:
                done = self.s.run(node, ["touch", str(self.release_path(node))], timeout=10.0)
                problem = None if done.ok else (done.stderr.strip() or f"exit {done.returncode}")
            except BackendError as exc:
                problem = exc.text()
            if problem is not None:
                self.say(t("warning.line", text=f"releasing the clients on {node}: {problem}"))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, nodes))

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
            servers: dict[str, list[tuple[Service, int]]] = {}  # node -> services there
            for name, count in expected.items():
                server = self.servers.get(name)
                if server is not None and not server.running():
                    continue  # a server that has ended will accept nothing more
                service = self.s.topology.service(name)
                servers.setdefault(service.node, []).append((service, count))
            return all(self.accepted(node, wanted) for node, wanted in servers.items())

        try:
            wait_until(
                established,
                timeout=max(shortest_hold, HELD_WAIT),
                what="held connections",
                most=HELD_PROBE_EVERY,
            )
        except BackendError as exc:
            self.say(t("warning.line", text=exc.text()))

    def accepted(self, node: str, wanted: list[tuple[Service, int]]) -> bool:
        """Each service on ``node`` has at least its count of connections ESTABLISHED and
        an empty accept queue: one look at the node's TCP sockets for all of them."""
        table = self.s.run(node, ["ss", "-Htan"], timeout=10.0).stdout
        return all(accepted_in(table, service.port, count) for service, count in wanted)


def accepted_in(table: str, port: int, count: int) -> bool:
    """In ``ss -Htan`` output, at least ``count`` ESTABLISHED sockets on local ``port`` and
    none waiting in its listener's accept queue. ss counts a connection as ESTABLISHED
    while it still waits in the queue, before the server has accepted it (and forked or
    started a thread for it); for a listener, Recv-Q is that queue."""
    established = 0
    for line in table.splitlines():
        words = line.split()  # State Recv-Q Send-Q Local:Port Peer:Port
        if len(words) < 5 or words[3].rpartition(":")[2] != str(port):
            continue
        if words[0] == "LISTEN" and words[1] != "0":
            return False
        established += words[0] == "ESTAB"
    return established >= count


def _client_knobs(sc: Scenario) -> list[str]:
    """The line client's flags for a scenario's repeat, rcvbuf and pause_reading."""
    argv = ["--repeat", str(sc.repeat)] if sc.repeat > 1 else []
    argv += ["--rcvbuf", str(sc.rcvbuf)] if sc.rcvbuf else []
    argv += ["--pause-reading", str(sc.pause_reading)] if sc.pause_reading > 0 else []
    return argv


def _no_result(returncode: int, stderr: str) -> str:
    """Why a client printed no result, in a few words."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    last = stderr.strip().splitlines()[-1:]
    return f"exit status {returncode}" + (f": {last[0]}" if last else ", no output")
