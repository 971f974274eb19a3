"""The docker backend class (see the package doc)."""

from __future__ import annotations

import io
import itertools
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from pathlib import Path, PurePosixPath

import docker

from lab.deploy.images import node_image
from lab.errors import BackendError, CommandTimeout, UsageError
from lab.run.backends.base import RUN_ID_RE, Backend, Completed, Owner, Proc, copy_missing
from lab.run.backends.docker import agent as agent_mod
from lab.run.backends.docker import archive, bringup, teardown
from lab.run.backends.docker import netem as netem_mod
from lab.run.backends.docker.engine import (
    ENGINE_ERRORS,
    NODE_LABEL,
    OWNER_LABEL,
    PARALLEL,
    RUN_LABEL,
    connect,
    engine,
    engine_url,
    object_name,
    owner_of_label,
)
from lab.run.backends.docker.proc import READ_PID_SCRIPT, SPAWN_SCRIPT, DockerProc, talk
from lab.spec.model import Node, Topology
from lab.spec.netem import Direction, Netem

KILL_GRACE = 2  # seconds between timeout's TERM and its KILL
# Extra seconds the client waits past a command's own timeout before giving up on the engine.
ENGINE_SLACK = 15.0

WORK_ROOT = PurePosixPath("/var/lib/socket-lab")
PID_ROOT = PurePosixPath("/run/socket-lab")


class DockerBackend(Backend):
    """Containers from the socket-lab node image on Docker bridge networks."""

    name = "docker"
    builds_on_nodes = True  # inside the node image, which has the compilers

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self._docker: docker.DockerClient | None = None
        self._ifaces: dict[str, dict[str, str]] = {}
        # Services start in threads: each spawn takes its own number (its pid file) from
        # one counter, which two threads cannot read the same value of.
        self._spawned = itertools.count(1)
        self._placeholders: list[IPv4Network] = []
        self._agents: dict[str, agent_mod.Agent] = {}

    # -- engine access -------------------------------------------------------------------
    @property
    def _client(self) -> docker.DockerClient:
        if self._docker is None:
            self._docker = connect()
        return self._docker

    @property
    def _api(self) -> docker.APIClient:
        return self._client.api

    def _name(self, thing: str) -> str:
        return object_name(self.run_id, thing)

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    def topology_problems(cls, topology: Topology) -> list[str]:
        return netem_mod.netem_problems(topology)

    @classmethod
    def available(cls) -> str | None:
        try:
            client = docker.from_env(timeout=10)
            client.ping()
            client.close()
        except (*ENGINE_ERRORS, OSError):
            return (
                f"Docker engine not reachable at {engine_url()} — is it running? "
                "use --backend netns"
            )
        if node_image() is None:
            return "socket-lab node image not built or out of date — run `lab images build`"
        return None

    def up(self, topology: Topology) -> None:
        image = self._image(topology)
        self._make_networks(topology)

        def bring_up(node: Node) -> None:
            self._make_node(topology, node, image)
            self._configure_node(topology, node)

        # Nodes are independent once their networks exist; the engine does the work, so a
        # few at a time shortens a large lab's start several-fold.
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for future in [pool.submit(bring_up, node) for node in topology.nodes]:
                future.result()
        for imp in topology.impairments:
            self.set_netem(imp.node, imp.network, imp.direction, imp.netem)

    # The steps of ``up`` that depend on where the nodes run (the swarm backend's differ).
    def _image(self, topology: Topology) -> str:
        image = node_image()
        if image is None:
            raise BackendError(
                "socket-lab node image not built or out of date — run `lab images build`"
            )
        return image

    def _make_networks(self, topology: Topology) -> None:
        for net in topology.networks:
            seed = int(self.run_id, 16) + len(self._placeholders) * 7919
            subnet = bringup.create_network(self._api, self.run_id, topology, net, seed)
            if subnet is not None:
                self._placeholders.append(subnet)

    def _make_node(self, topology: Topology, node: Node, image: str) -> None:
        bringup.create_node(self._api, self.run_id, topology, node, image)

    def _node_api(self, node: str) -> docker.APIClient:
        """The engine API that serves ``node``'s container."""
        return self._api

    def set_netem(self, node: str, network: str, direction: Direction, netem: Netem | None) -> None:
        iface = self.interfaces(node).get(network)
        if iface is None:
            raise UsageError(f"node {node} has no interface on network {network!r}")
        netem_mod.set_netem(
            lambda argv: self.run(node, argv, timeout=30),
            iface,
            direction,
            netem,
            root=os.geteuid() == 0,
        )

    def _configure_node(self, topology: Topology, node: Node) -> None:
        """Real addresses, routes and directories, in one command once the container runs:
        through the node's agent, started first where it is used (an exec of its own would
        cost the engine as much as starting the agent)."""
        api = self._node_api(node.name)
        if agent_mod.usable(api):
            with engine(f"starting the agent of node {node.name}"):
                self._agents[node.name] = agent_mod.Agent(api, self._name(node.name), self.python)
        macs = self._macs(node.name)
        spec = {
            "dirs": [str(self.workdir(node.name)), str(PID_ROOT / self.run_id)],
            "addresses": [
                [net, macs[net], f"{iface.address}/{n.subnet.prefixlen}", n.mtu]
                for iface in node.interfaces
                for net, n in [(iface.network, topology.network(iface.network))]
            ],
            "gateway": None if node.gateway is None else str(node.gateway),
        }
        done = self.run(
            node.name, [self.python, "-c", bringup.NODE_SETUP, json.dumps(spec)], timeout=30
        )
        if not done.ok:
            lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
            raise BackendError(f"docker: setting up node {node.name}: {lines[-1]}")
        self._ifaces[node.name] = json.loads(done.stdout)

    def _macs(self, node: str) -> dict[str, str]:
        """The node's MAC address on each of its lab networks, as the engine reports them."""
        with engine(f"inspecting node {node}"):
            info = self._node_api(node).inspect_container(self._name(node))
        prefix = self._name("")
        return {
            net_name[len(prefix) :]: str(settings["MacAddress"]).lower()
            for net_name, settings in info["NetworkSettings"]["Networks"].items()
            if net_name.startswith(prefix)
        }

    def down(self) -> None:
        # Taken out first: closing an agent ends the commands still waiting on it, and
        # their threads drop it from the map (AgentGone in run) while this loop would run.
        agents, self._agents = self._agents, {}
        for agent in agents.values():
            agent.close()
        teardown.remove_labelled(self._client, {RUN_LABEL: self.run_id})
        self._ifaces.clear()

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        client = connect()
        try:
            return teardown.remove_labelled(client, {RUN_LABEL: run_id} if run_id else {})
        finally:
            client.close()

    @classmethod
    def owner(cls, run_id: str) -> Owner | None:
        client = connect()
        try:
            with engine("listing the run's objects"):
                match = {"label": f"{RUN_LABEL}={run_id}"}
                found = client.api.containers(all=True, filters=match)
                found += client.api.networks(filters=match)
        finally:
            client.close()
        for obj in found:
            label = (obj.get("Labels") or {}).get(OWNER_LABEL)
            if label:
                return owner_of_label(label)
        return None

    @classmethod
    def collect_leftovers(cls, run_id: str, out_dir: Path) -> list[str]:
        """Each container of the run's work folder, copied out of it (stopped or not)."""
        client = connect()
        try:
            return cls._collect_from(client, run_id, out_dir)
        finally:
            client.close()

    @classmethod
    def _collect_from(cls, client: docker.DockerClient, run_id: str, out_dir: Path) -> list[str]:
        collected = []
        with engine("listing the run's containers"):
            found = client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
        for c in found:
            node = (c.get("Labels") or {}).get(NODE_LABEL)
            if not node or not RUN_ID_RE.match(run_id):
                continue
            with engine(f"copying the work folder of {node}"):
                stream, _ = client.api.get_archive(c["Id"], str(WORK_ROOT / run_id / node))
                with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as buf:
                    for chunk in stream:
                        buf.write(chunk)
                    buf.seek(0)
                    archive.extract(buf, Path(tmp))
                    count = copy_missing(Path(tmp), out_dir / node)
            collected.append(f"{node}: {count} file{'s' if count != 1 else ''}")
        return collected

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        client = connect()
        try:
            return teardown.describe_runs(client)
        finally:
            client.close()

    # -- on a node -----------------------------------------------------------------------
    @property
    def python(self) -> str:
        return "python3"

    def workdir(self, node: str) -> PurePosixPath:
        # Named after the node too, so that paths never look alike across nodes.
        return WORK_ROOT / self.run_id / node

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        what = f"running {argv[0] if argv else '?'} on {node}"
        agent = self._agents.get(node)
        if agent is not None:
            try:
                return agent.completed(node, argv, timeout, input, ENGINE_SLACK)
            except agent_mod.AgentGone:
                self._agents.pop(node, None)
                self._check_node_running(node, what)  # a node gone is said; else by exec
        # The node enforces the timeout itself, so a command never outlives it there.
        limited = ["timeout", "-k", str(KILL_GRACE), f"{max(timeout, 0.01):g}", *argv]
        started = time.monotonic()
        with engine(what):
            exec_id = self._node_api(node).exec_create(
                self._name(node), limited, stdin=input is not None, stdout=True, stderr=True
            )["Id"]
            sock = self._node_api(node).exec_start(exec_id, socket=True)
        try:
            stdout, stderr = talk(sock, input, timeout + KILL_GRACE + ENGINE_SLACK)
        except TimeoutError as exc:
            raise CommandTimeout(f"{what}: the engine did not answer in time") from exc
        except OSError as exc:
            raise BackendError(f"docker: {what}: {exc}") from exc
        with engine(what):
            code = self._node_api(node).exec_inspect(exec_id).get("ExitCode")
        returncode = -1 if code is None else int(code)
        early = time.monotonic() - started < timeout
        if returncode == -1 or (returncode == 137 and early):
            # Killed before `timeout` could have done it: by whom? The container's end
            # raises here; a kill inside a live node is the command's own outcome.
            self._check_node_running(node, what)
        if returncode == 124 or (returncode == 137 and not early):
            raise CommandTimeout(f"{' '.join(argv)} on {node} did not finish in {timeout:g} s")
        return Completed(
            tuple(argv),
            returncode,
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace"),
        )

    def _check_node_running(self, node: str, what: str, settle: float = 2.0) -> None:
        """A command cut off because its container died (killed, out of memory) is no
        timeout: say that the node is gone. The engine marks the container stopped a
        moment after its processes die, so its state is watched for ``settle`` seconds."""
        deadline = time.monotonic() + settle
        while True:
            try:
                with engine(what):
                    state = (
                        self._node_api(node).inspect_container(self._name(node)).get("State") or {}
                    )
            except BackendError as exc:
                raise BackendError(f"docker: {what}: node {node} is gone ({exc})") from exc
            if not state.get("Running"):
                raise BackendError(
                    f"docker: {what}: node {node} is not running (container "
                    f"{state.get('Status', 'gone')}, exit code {state.get('ExitCode')})"
                )
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        agent = self._agents.get(node)
        if agent is not None and argv:
            try:
                started = agent.spawn(argv, str(log), ENGINE_SLACK)
            except agent_mod.AgentGone:
                self._agents.pop(node, None)
                self._check_node_running(node, f"starting {argv[0]} on {node}")
            else:
                if isinstance(started, int):
                    api = self._node_api(node)
                    return agent_mod.AgentProc(self, api, node, argv, started, agent, ENGINE_SLACK)
                # It could not start: the exec below says so as it always has, with an
                # exit status and the shell's message in the log.
        return self._spawn_by_exec(node, argv, log)

    def _spawn_by_exec(self, node: str, argv: Sequence[str], log: PurePosixPath) -> Proc:
        pidfile = PID_ROOT / self.run_id / f"{next(self._spawned)}.pid"
        command = ["sh", "-c", SPAWN_SCRIPT, "sh", str(pidfile), str(log), *argv]
        what = f"starting {argv[0] if argv else '?'} on {node}"
        with engine(what):
            exec_id = self._node_api(node).exec_create(
                self._name(node), command, stdout=False, stderr=False
            )["Id"]
            self._node_api(node).exec_start(exec_id, detach=True)
        done = self.run(node, ["sh", "-c", READ_PID_SCRIPT, "sh", str(pidfile)], timeout=10)
        if not done.ok or not done.stdout.strip().isdigit():
            raise BackendError(f"docker: {what}: no pid ({done.stderr.strip()})")
        return DockerProc(self, self._node_api(node), node, argv, exec_id, int(done.stdout.strip()))

    def program_dir(self, node: str, name: str) -> PurePosixPath:
        return WORK_ROOT / self.run_id / "programs" / name

    def upload(self, node: str, sources: Sequence[Path], folder: PurePosixPath) -> None:
        made = self.run(node, ["mkdir", "-p", "-m", "755", str(folder)], timeout=30.0)
        if not made.ok:
            raise BackendError(f"cannot make {folder} on {node}: {made.stderr.strip()}")
        buf = io.BytesIO()
        # Links are followed, as a copy would; everything readable by the run user.
        with tarfile.open(fileobj=buf, mode="w", dereference=True) as tar:
            for src in sources:
                tar.add(str(src), arcname=src.name, filter=archive.readable)
        with engine(f"copying the sources of {folder.name} to {node}"):
            self._node_api(node).put_archive(self._name(node), str(folder), buf.getvalue())

    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        with engine(f"copying {remote_dir} from {node}"):
            stream, _ = self._node_api(node).get_archive(self._name(node), str(remote_dir))
            with tempfile.TemporaryFile() as buf:
                for chunk in stream:
                    buf.write(chunk)
                buf.seek(0)
                archive.extract(buf, local_dir)

    def interfaces(self, node: str) -> Mapping[str, str]:
        if node not in self._ifaces:
            self._ifaces[node] = self._discover_interfaces(node)
        return dict(self._ifaces[node])

    def _discover_interfaces(self, node: str) -> dict[str, str]:
        """Network name -> interface name, matching the engine's MAC addresses."""
        macs = self._macs(node)
        done = self.run(node, [self.python, "-c", bringup.LIST_LINKS], timeout=15)
        by_mac: dict[str, str] = json.loads(done.stdout) if done.ok else {}
        result = {net: by_mac[mac] for net, mac in macs.items() if mac in by_mac}
        if len(result) != len(macs):
            raise BackendError(f"docker: node {node}: interfaces not found for {sorted(macs)}")
        return result
