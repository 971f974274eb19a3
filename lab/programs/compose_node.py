"""One node of the compose lab, run in the phases of ``lab run`` (``compose.yaml``).

``lab run`` drives every node from outside; under ``docker compose up`` nothing outside
the containers runs, so each node drives itself, and the nodes keep in step through
marker files in a folder they all mount (``--sync``): a node writes ``STEP.NODE`` when it
has done a step, and waits for the other nodes' markers before the next one. The steps,
in ``lab run``'s order::

    links' MTU (--mtu), user programs built (if any)
                                         -> built.NODE      (nodes given by --builders)
    captures, snapshot "before"          -> before.NODE     (all: then services start)
    services listening                   -> listening.NODE  (all: then clients start)
    (every client of the node ended      -> ran.NODE, when it happens)
    held connections established         -> held.NODE       (nodes given by --held-nodes)
    snapshot "during"                    -> during.NODE
    clients finished                     -> clients.NODE    (nodes given by --client-nodes)
    (the node's services restarted, for --restart)
    servers' children exited             -> settled.NODE    (all: then "after" snapshots)
    snapshot "after"                     -> after.NODE      (all: then the watch)
    the watch's snapshots (--watch)                         (then services stop)
    services stopped                     -> stopped.NODE    (all: then the "final" snapshot)
    snapshot "final", captures stopped   -> final.NODE

A node that fails writes ``failed.NODE``, which every wait counts as that node's marker,
so the others go on and their evidence still says what happened; a wait also gives up
after ``--step-timeout`` seconds. What happened is written to ``RESULTS/NODE/node.json``
(raw facts: process ids, exit statuses, client outputs, interfaces, errors), which
``lab.programs.compose_record`` turns into the run.json ``lab report`` reads.

The jobs are given as to ``lab.programs.supervise`` (``serve``/``client`` groups after
``--``); clients run all at once, as in ``lab run``, each after its ``--start-after``
delay, with their JSON output kept. Standard library only: this runs inside the node image.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from lab.programs.compose_snapshots import NodeSnapshots, add_snapshot_options
from lab.programs.compose_steps import NodeSteps, add_step_options
from lab.programs.supervise import (
    Job,
    Stopped,
    SuperviseError,
    Supervisor,
    build_parser,
    parse_jobs,
    say,
    split_argv,
)
from lab.programs.supervise_children import Child, LogFile
from lab.programs.supervise_net import capture_interfaces, interface_with, open_ports

NODE_FILE = "node.json"
STEP_TIMEOUT = 120.0
CLIENT_TIMEOUT = 300.0


def add_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--sync", type=Path, required=True, help="folder of step markers")
    parser.add_argument("--nodes", required=True, help="every node, comma-separated")
    parser.add_argument("--client-nodes", default="", help="nodes that run clients")
    parser.add_argument("--held-nodes", default="", help="nodes that serve held connections")
    parser.add_argument("--held", action="append", default=[], help="tcp:PORT:COUNT:SERVICE")
    parser.add_argument("--held-timeout", type=float, default=5.0)
    parser.add_argument("--start-after", action="append", default=[], help="JOB=SECONDS")
    parser.add_argument("--step-timeout", type=float, default=STEP_TIMEOUT)
    parser.add_argument("--mtu", action="append", default=[], help="ADDRESS=MTU of a link")
    add_step_options(parser)
    add_snapshot_options(parser)
    return parser


def names(text: str) -> list[str]:
    return [n for n in text.split(",") if n]


class PhasedNode(NodeSnapshots, NodeSteps, Supervisor):
    """A ``Supervisor`` that keeps in step with the other nodes; takes the snapshots
    (``NodeSnapshots``), builds the user's programs and restarts services (``NodeSteps``)."""

    def __init__(self, args: argparse.Namespace, jobs: list[Job]) -> None:
        super().__init__(args, jobs)
        self.node: str = args.node
        self.facts: dict[str, object] = {"node": self.node, "started": time.time()}
        self.phases: list[str] = []
        self.watched: list[dict[str, object]] = []
        self.errors: list[list[str]] = []
        self.services: dict[str, dict[str, object]] = {}
        self.clients: dict[str, dict[str, object]] = {}
        self.servers: dict[str, Child] = {}
        self.user_logs: dict[str, LogFile] = {}
        self.running = 0  # clients not yet ended
        self.lock = threading.Lock()

    # -- keeping in step --------------------------------------------------------------------
    def mark(self, step: str) -> None:
        self.args.sync.mkdir(parents=True, exist_ok=True)
        (self.args.sync / f"{step}.{self.node}").write_text(f"{time.time()}\n")

    def wait_all(self, step: str, nodes: Sequence[str], timeout: float | None = None) -> None:
        """Until every node of ``nodes`` has marked ``step`` (or failed); noted if not."""
        limit = self.args.step_timeout if timeout is None else timeout

        def arrived(node: str) -> bool:
            return any((self.args.sync / f"{s}.{node}").exists() for s in (step, "failed"))

        try:
            self.wait_for(lambda: all(map(arrived, nodes)), limit, f"the nodes' {step} step")
        except SuperviseError as exc:
            late = ", ".join(n for n in nodes if not arrived(n))
            self.note(step, f"{exc} (not there: {late})")

    def note(self, step: str, error: str) -> None:
        self.errors.append([step, error])
        say(f"warning: {step}: {error}")

    # -- evidence -----------------------------------------------------------------------------
    def write_facts(self) -> None:
        if self.out_dir is None:
            return
        self.facts.update(
            ended=time.time(),
            phases=self.phases,
            watch=self.watched,
            errors=self.errors,
            services=self.services,
            clients=self.clients,
            captures=[
                {"interface": c.name.removeprefix("tcpdump-"), "pid": c.proc.pid}
                for c in self.captures
            ],
        )
        path = self.out_dir / NODE_FILE
        path.with_suffix(".tmp").write_text(json.dumps(self.facts, indent=2) + "\n")
        path.with_suffix(".tmp").replace(path)

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> int:
        everyone = names(self.args.nodes)
        assert self.out_dir is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.build_programs()
        self.set_mtus()
        if self.args.gateway:
            self.set_gateway()
        interfaces = capture_interfaces()
        self.write_interfaces(interfaces)
        if self.args.capture:
            self.start_captures(interfaces)
        self.snapshot("before")
        self.mark("before")
        self.wait_all("before", everyone)
        self.start_services()
        self.mark("listening")
        self.wait_all("listening", everyone)
        threads = self.start_clients()
        self.wait_held()
        self.snapshot("during")
        for thread in threads:
            thread.join()
        self.mark("clients")
        self.wait_all("clients", names(self.args.client_nodes), CLIENT_TIMEOUT)
        self.run_restarts()
        self.settle()
        self.mark("settled")  # every server's children gone before any node's "after"
        self.wait_all("settled", everyone)
        self.snapshot("after")
        self.mark("after")
        self.wait_all("after", everyone)
        self.watch()
        self.stop_services()
        self.mark("stopped")
        self.wait_all("stopped", everyone)
        self.snapshot("final")
        self.wait_for_quiet()
        self.mark("final")
        return 0

    def set_mtus(self) -> None:
        """The MTU of each ``--mtu`` link (the engine's network has it too) and one segment
        per packet, as ``lab run`` sets them: the captures show the segments the link
        carries, not the many-MSS packets the interface would hand to tcpdump."""
        for spec in self.args.mtu:
            address, mtu = spec.split("=", 1)
            dev = interface_with(address)
            if dev is None:
                raise SuperviseError(f"no interface with the address {address} (for its MTU)")
            argv = ["ip", "link", "set", "dev", dev, "mtu", mtu, "gso_max_segs", "1"]
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SuperviseError(f"{' '.join(argv)}: {done.stderr.strip()}")
            say(f"{dev}: MTU {mtu}, one segment per packet")

    def start_services(self) -> None:
        wanted = set(self.args.listen)
        for job in (j for j in self.jobs if j.kind == "serve"):
            child = self.start(f"service-{job.name}", job.argv)
            self.servers[job.name] = child
            self.services[job.name] = {"pid": child.proc.pid, "log": f"service-{job.name}.log"}
        self.wait_for(
            lambda: wanted <= open_ports(),
            30.0,
            "listening on " + ", ".join(sorted(map(str, wanted))),
            watch=[c for c in self.children if c not in self.captures],
        )
        self.args.ready_file.write_text(f"{os.getpid()}\n")

    def start_clients(self) -> list[threading.Thread]:
        delays = dict(item.split("=", 1) for item in self.args.start_after)
        threads = []
        self.running = sum(1 for j in self.jobs if j.kind == "client")
        for job in (j for j in self.jobs if j.kind == "client"):
            delay = float(delays.get(job.name, "0"))
            thread = threading.Thread(target=self.run_client, args=(job, delay), daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def run_client(self, job: Job, delay: float) -> None:
        """One client to its end; its JSON output and exit status kept for the record."""
        time.sleep(delay)
        say(f"client {job.name}: {' '.join(job.argv)}")
        try:
            done = subprocess.run(
                list(job.argv), capture_output=True, text=True, timeout=CLIENT_TIMEOUT
            )
            outcome: dict[str, object] = {
                "returncode": done.returncode,
                "stdout": done.stdout,
                "stderr": done.stderr[-2000:],
            }
        except (OSError, subprocess.TimeoutExpired) as exc:
            outcome = {"returncode": None, "stdout": "", "stderr": "", "error": str(exc)}
        self.clients[job.name] = outcome
        for line in reply_lines(str(outcome["stdout"])):
            os.write(1, f"{job.name}| {line}\n".encode("utf-8", "replace"))
        say(f"client {job.name}: exit {outcome['returncode']}")
        with self.lock:
            self.running -= 1
            if self.running == 0:
                self.mark("ran")  # a server waiting for a first connection waits no more

    def stop_services(self) -> None:
        for name, child in self.servers.items():
            info = self.services[name]
            info["ended_before_stop"] = child.proc.poll() is not None
            child.signal(signal.SIGTERM)
            info.update(self.stopped(name, child))
        self.children = [c for c in self.children if c in self.captures]


def reply_lines(stdout: str) -> list[str]:
    """What a client got back, one line per connection, from its JSON output (as it is
    when it is not JSON)."""
    try:
        doc = json.loads(stdout)
        connections = doc["connections"]
    except (ValueError, TypeError, KeyError):
        return stdout.splitlines()[:50]
    lines = []
    for conn in connections[:50]:
        replies = conn.get("replies") or []
        got = f"got {', '.join(map(repr, replies))}" if replies else "got nothing"
        error = f" ({conn['error']})" if conn.get("error") else ""
        lines.append(f"connection {conn.get('index')} from {conn.get('local')}: {got}{error}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    options, job_args = split_argv(sys.argv[1:] if argv is None else argv)
    parser = add_options(build_parser())
    args = parser.parse_args(options)
    if args.results is None:
        parser.error("--results is required")
    try:
        jobs = parse_jobs(job_args)
    except SuperviseError as exc:
        parser.error(str(exc))
    node = PhasedNode(args, jobs)
    node.install_signals()
    args.ready_file.unlink(missing_ok=True)
    try:
        return node.run()
    except Stopped as stop:
        node.note("stopped", f"signal {stop.signum}")
        node.mark("failed")
        return 128 + stop.signum
    except (SuperviseError, OSError) as exc:
        node.note("run", str(exc))
        node.mark("failed")
        return 1
    finally:
        node.stop_all()
        node.write_facts()
        args.ready_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
