"""A live lab: ``lab up`` brings a topology up and leaves it running for hands-on work.

The lab is owned by one small supervisor process per run (forked by ``lab up``, in its own
session, so that no Ctrl-C on a terminal reaches it). It holds the ``Session`` of the run,
with the handles of the services and captures it started, and keeps the guarantees of
``lab run``: whatever ends it (``lab down``, SIGTERM from ``lab clean --force``, an error)
the services are stopped, the ``final`` snapshot is taken, the evidence is collected and
the backend tears down. A supervisor was chosen over a daemon-less design because the
services' and captures' handles, the run record and the teardown path all live in one
process already (``runner.Flow``); rebuilding them from PIDs in every later command would
be a second, weaker copy of that code.

Later commands find the lab by its state file, ``<registry>/live/<run id>.json``, and talk
to the supervisor over a Unix socket next to it (snapshot, scenario, down). ``exec``,
``shell`` and ``capture`` do not go through it: they run directly on the node (netns:
``ip netns exec``; docker: ``docker exec``), so their terminal, stdin and exit status are
the user's own.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lab.errors import LabError, UsageError
from lab.i18n import msg
from lab.run.backends.base import Backend
from lab.run.livenetem import LiveImpairments, NetemRequest
from lab.run.livestate import (
    MAX_REQUEST,
    LiveNode,
    LiveState,
    Reply,
    check_phase_name,
    read_line,
    send_reply,
)
from lab.run.record import write_atomically
from lab.run.runner import Flow

LIVE_MARK = "live.json"  # in the results folder: this run was live (which scenarios ran)


# -- the supervisor's flow ---------------------------------------------------------------
class LiveFlow(Flow):
    """``lab run``'s steps, cut where the user takes over: up to the services, then what
    the user asks for, then from stopping the services to the collection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hand_phases: list[str] = []
        self.scenarios_run: list[str] = []
        self.impairments = LiveImpairments.of(self.s.topology)
        self.down_conn: socket.socket | None = None
        self.listener: socket.socket | None = None
        self.ready: Callable[[LiveFlow], None] = lambda _flow: None

    def run(self) -> None:
        self.bring_up()
        with self.s.timings.measure("up"):
            self.start_all()
        self.record.failed_step = None
        self.mark()
        self.checkpoint()
        self.ready(self)
        self.serve()
        self.down()

    def serve(self) -> None:
        """Answer requests until ``down``; a failed request is answered, the lab stays."""
        assert self.listener is not None
        while True:
            self.s.check_signal()
            conn, _ = self.listener.accept()
            try:
                raw = read_line(conn)
                req = json.loads(raw) if raw else {}
                op, arg = str(req.get("op", "")), str(req.get("arg", ""))
            except (OSError, ValueError, AttributeError):
                conn.close()
                continue
            if op == "down":
                self.down_conn = conn
                return
            try:
                reply = Reply(True, self.handle(op, arg))
            except LabError as exc:
                reply = Reply(False, str(exc), exc.exit_code)
            except Exception as exc:  # a request that fails must not take the lab down
                reply = Reply(False, f"{op}: {type(exc).__name__}: {exc}", 1)
            send_reply(conn, reply)
            conn.close()

    def handle(self, op: str, arg: str) -> str:
        if op == "ping":
            return "alive"
        if op == "snapshot":
            name = arg or f"hand-{len(self.hand_phases) + 1}"
            check_phase_name(name)
            if name in self.hand_phases:
                raise UsageError.said(msg("live.snapshot_taken", name=repr(name)))
            self.phase(name)
            self.hand_phases.append(name)
            self.mark()
            return f"snapshot {name}: {self.s.out_dir}/<node>/snapshots/{name}.*.txt"
        if op == "scenario":
            return self.scenario(arg)
        if op == "netem":
            told = self.impairments.change(
                self.s.backend, self.s.topology, NetemRequest.from_arg(arg)
            )
            self.mark()
            return told
        if op == "netem-show":
            ifaces = {
                n.name: dict(self.s.backend.interfaces(n.name)) for n in self.s.topology.nodes
            }
            return self.impairments.show(ifaces)
        raise UsageError.said(msg("live.unknown_request", op=repr(op)))

    def scenario(self, name: str) -> str:
        """One of the file's scenarios against the running services, as ``lab run`` runs
        them: its clients, the ``during`` snapshot, its restarts, then ``after``."""
        topo = self.s.topology
        try:
            sc = next(s for s in topo.scenarios if s.name == name)
        except StopIteration:
            names = ", ".join(s.name for s in topo.scenarios) or "none"
            said = msg("live.no_scenario", name=repr(name), names=names)
            raise UsageError.said(said) from None
        if name in self.scenarios_run:
            raise UsageError.said(msg("live.scenario_again", name=repr(name)))
        if sc.service not in self.servers:
            said = msg("live.scenario_no_service", name=repr(name), service=sc.service)
            raise UsageError.said(said)
        # Its `impair` steps put back what the links carry now, `lab netem`'s changes too.
        now = self.impairments.current()
        self.s.topology = replace(topo, scenarios=(sc,), impairments=now)
        try:
            self.run_scenarios()
            self.run_restarts()
            self.settle()
            self.phase("after")
        finally:
            self.s.topology = topo
        self.scenarios_run.append(name)
        self.mark()
        self.checkpoint()
        done = self.record.scenarios[name].clients
        failed = [node for node, c in done.items() if c.returncode != 0]
        if failed:
            return f"scenario {name}: clients ran; failed on {', '.join(failed)}"
        return f"scenario {name}: {len(done)} client node(s) done"

    def down(self) -> None:
        from lab.run.collect import stop_captures

        self.step("stop")
        self.stop_services()
        self.phase("final")
        self.node_errors("stop", stop_captures(self.captures))
        self.step("collect")
        self.s.fetch_all()
        self.record.failed_step = None

    def mark(self) -> None:
        """The results folder's note that the run was live: which scenarios were run (the
        report judges those only) and the snapshots taken by hand."""
        data = {
            "scenarios": self.scenarios_run,
            "snapshots": self.hand_phases,
            "netem": self.impairments.changes,
        }
        with contextlib.suppress(OSError):
            write_atomically(self.s.out_dir / LIVE_MARK, json.dumps(data))


def live_scenarios(out_dir: Path) -> list[str] | None:
    """The scenarios a live run ran (None: not a live run's folder)."""
    path = out_dir / LIVE_MARK
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8")[:MAX_REQUEST])
        return [str(s) for s in data.get("scenarios", [])]
    except (OSError, ValueError, AttributeError):
        return None


def state_of(flow: LiveFlow, name: str, sock_path: Path, pid: int, start: int | None) -> LiveState:
    """The state file's content once the lab is up."""
    backend = flow.s.backend
    engine, engines = _swarm_engines(backend)
    nodes = []
    for node in flow.s.topology.nodes:
        ifaces = dict(backend.interfaces(node.name))
        addrs = {ifaces[i.network]: str(i.address) for i in node.interfaces if i.network in ifaces}
        nodes.append(LiveNode(node.name, ifaces, addrs, engine(node.name)))
    topo = flow.s.topology

    def addr(node: str) -> str:
        return str(topo.node(node).interfaces[0].address)

    services = [
        f"{s.name} {s.program} {addr(s.node)}:{s.port}/{s.protocol} on {s.node}"
        for s in topo.services
    ]
    return LiveState(
        run_id=flow.s.run_id,
        name=name,
        topology=flow.s.topology.name,
        backend=backend.name,
        out=str(flow.s.out_dir.resolve()),
        socket=str(sock_path),
        pid=pid,
        pid_start=start,
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        nodes=nodes,
        services=services,
        scenarios=[s.name for s in flow.s.topology.scenarios],
        engines=engines,
    )


def _swarm_engines(backend: Backend) -> tuple[Callable[[str], list[str]], str | None]:
    """On swarm: how the docker command reaches each node's engine, and the engines file
    (for a later ``lab down`` of a lab whose supervisor is gone); elsewhere nothing."""
    if backend.name != "swarm":
        return (lambda _node: []), None
    from lab.run.backends.swarm.backend import SwarmBackend

    assert isinstance(backend, SwarmBackend)
    return backend.docker_options, backend.engines_path()
