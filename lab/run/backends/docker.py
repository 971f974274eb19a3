"""The docker backend: one container per node, one bridge network per topology network.

Everything goes through the Docker Engine API (docker SDK); no SDK object leaves this module
and every engine error becomes ``BackendError``. Each container and network is named
``slab-<rid>-<name>`` and labelled with the run id, topology and backend, and ``down`` /
``clean`` find what to remove by those labels only.

Addresses: the engine's IPAM refuses two networks with overlapping subnets ("Pool overlaps"),
so two runs of one topology could not coexist, and the host would get a route into every lab
subnet. So each bridge gets a small placeholder subnet from 198.18.0.0/15 (the benchmarking
range), and once a container runs, the node's real address replaces the placeholder on each
interface (found by its MAC address). The host then has no address in any lab subnet and no
node has a route towards the host: traffic stays between the lab's own nodes.

Networks are plain (not ``internal``) bridges with IP masquerading switched off.
``internal=True`` cannot be used: with the host's bridge netfilter on, the engine's isolation
rules for internal networks drop bridged frames whose addresses lie outside the bridge's own
subnet, which is exactly the traffic a router node forwards between two lab networks.

Containers run unprivileged: every capability dropped, then only
NET_ADMIN (routes, promiscuous capture), NET_RAW (packet sockets for tcpdump, ping),
SETUID + SETGID + CHOWN (tcpdump switches to its own user and hands it the capture file;
without these it exits "Couldn't change to 'tcpdump'"), and KILL (stopping that tcpdump,
which no longer runs as root). ``init`` (docker-init) is PID 1 so that the double-fork
server's orphans are reaped.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from ipaddress import IPv4Network
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from lab.deploy.images import node_image
from lab.errors import BackendError, CommandTimeout
from lab.run.backends.base import Backend, Completed, Proc
from lab.spec.model import Network, Node, Topology

PREFIX = "slab"
RUN_LABEL = "socket-lab.run"
TOPOLOGY_LABEL = "socket-lab.topology"
BACKEND_LABEL = "socket-lab.backend"
NODE_LABEL = "socket-lab.node"
NETWORK_LABEL = "socket-lab.network"

CAPABILITIES = ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID", "CHOWN", "KILL"]
MEMORY_LIMIT = "256m"
PIDS_LIMIT = 1024  # the thread server's threads count here too
KILL_GRACE = 2  # seconds between timeout's TERM and its KILL
SUBNET_LABEL = "socket-lab.subnet"
PLACEHOLDER_TRIES = 256
PARALLEL = 8  # engine requests in flight at once when starting or removing many nodes
# Extra seconds the client waits past a command's own timeout before giving up on the engine.
ENGINE_SLACK = 15.0

WORK_ROOT = PurePosixPath("/var/lib/socket-lab")
PID_ROOT = PurePosixPath("/run/socket-lab")

# The spawn wrapper: positional parameters are the pidfile, the log, then the command.
# No value is ever pasted into this text.
SPAWN_SCRIPT = 'echo $$ > "$1"; log=$2; shift 2; exec "$@" > "$log" 2>&1'
# Waits (inside the node) for a spawn's pidfile and prints it.
READ_PID_SCRIPT = 'while [ ! -s "$1" ]; do sleep 0.01; done; cat "$1"'

# Run with python3 on a node at start. argv[1] is JSON: the directories to create, then for
# each network [name, MAC, address/prefix]: that interface's placeholder address is replaced
# by the real one. The engine's default route goes with the placeholder; the node's own
# gateway, if any, becomes the default route. Prints {network: interface name}.
NODE_SETUP = """
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
for d in spec["dirs"]:
    os.makedirs(d, exist_ok=True)
by_mac = {}
for dev in os.listdir("/sys/class/net"):
    with open(f"/sys/class/net/{dev}/address") as f:
        by_mac[f.read().strip().lower()] = dev
def ip(*args):
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"ip {' '.join(args)}: {done.stderr.strip()}")
names = {}
for net, mac, cidr in spec["addresses"]:
    if mac not in by_mac:
        sys.exit(f"no interface with MAC {mac} for network {net}")
    dev = names[net] = by_mac[mac]
    ip("-4", "addr", "flush", "dev", dev)
    ip("addr", "add", cidr, "dev", dev)
if spec["gateway"]:
    ip("route", "replace", "default", "via", spec["gateway"])
print(json.dumps(names))
"""

# Prints {MAC: interface name} for the node's interfaces.
LIST_LINKS = """
import json, os
out = {}
for dev in os.listdir("/sys/class/net"):
    with open(f"/sys/class/net/{dev}/address") as f:
        out[f.read().strip().lower()] = dev
print(json.dumps(out))
"""

_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def _remove_network(api: docker.APIClient, net_id: str, tries: int = 5) -> None:
    """Remove a network. After many containers go at once the engine can keep endpoints
    of containers that no longer exist ("has active endpoints"): force-disconnect what the
    network still lists, then try again."""
    for attempt in range(tries):
        try:
            api.remove_network(net_id)
            return
        except docker.errors.APIError as exc:
            if "active endpoints" not in str(exc.explanation or exc) or attempt == tries - 1:
                raise
        for endpoint in api.inspect_network(net_id).get("Containers") or {}:
            with suppress(docker.errors.APIError):
                api.disconnect_container_from_network(endpoint, net_id, force=True)
        time.sleep(0.2 * (attempt + 1))


def _engine_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@contextmanager
def _engine(what: str) -> Iterator[None]:
    """Turn any engine error inside the block into one ``BackendError`` line."""
    try:
        yield
    except docker.errors.APIError as exc:
        detail = exc.explanation or str(exc)
        raise BackendError(f"docker: {what}: {detail}") from exc
    except _ENGINE_ERRORS as exc:
        raise BackendError(f"docker: {what}: {exc}") from exc


def _client() -> docker.DockerClient:
    with _engine(f"connecting to the engine at {_engine_url()}"):
        return docker.from_env()


PLACEHOLDER_RANGE = IPv4Network("198.18.0.0/15")


def placeholder_subnets(attached: int, seed: int) -> list[IPv4Network]:
    """Candidate bridge subnets big enough for ``attached`` containers plus the engine's
    gateway, starting at a run-dependent offset so that concurrent runs rarely race."""
    need = attached + 3  # network and broadcast addresses, and the bridge's own
    prefix = min(29, 32 - (need - 1).bit_length())
    candidates = list(PLACEHOLDER_RANGE.subnets(new_prefix=prefix))
    start = seed % len(candidates)
    return candidates[start:] + candidates[:start]


def _exit_status(code: int) -> int:
    """An engine exit code as the contract's status: 128+N (killed by signal N) is -N."""
    if 128 < code < 128 + 65:
        return -(code - 128)
    return code


def _read_exactly(raw: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = raw.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _read_streams(raw: socket.socket) -> tuple[bytes, bytes]:
    """Read an attached exec's output to its end. Without a tty the engine sends frames:
    8 header bytes (stream 1 = stdout, 2 = stderr; then the length, big-endian) + data."""
    out, err = bytearray(), bytearray()
    while True:
        header = _read_exactly(raw, 8)
        if len(header) < 8:
            return bytes(out), bytes(err)
        size = int.from_bytes(header[4:8], "big")
        payload = _read_exactly(raw, size)
        (err if header[0] == 2 else out).extend(payload)


class DockerProc(Proc):
    """A command started by ``docker exec`` in the background."""

    def __init__(
        self, backend: DockerBackend, node: str, argv: Sequence[str], exec_id: str, pid: int
    ) -> None:
        self._backend = backend
        self._exec_id = exec_id
        self._pid = pid
        self.node = node
        self.argv = tuple(argv)

    @property
    def pid(self) -> int:
        return self._pid

    def _state(self) -> tuple[bool, int | None]:
        try:
            info = self._backend._api.exec_inspect(self._exec_id)
        except docker.errors.NotFound:
            # The container has gone (torn down), and the process with it.
            return False, 128 + 9
        except _ENGINE_ERRORS as exc:
            raise BackendError(f"docker: inspecting a process on {self.node}: {exc}") from exc
        code = info.get("ExitCode")
        return bool(info.get("Running")), None if code is None else int(code)

    def running(self) -> bool:
        return self._state()[0]

    def signal(self, signum: int) -> None:
        if not self.running():
            return
        # Exits non-zero if the process ended meanwhile, which the contract allows.
        self._backend.run(self.node, ["kill", f"-{int(signum)}", str(self._pid)], timeout=10)

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while True:
            running, code = self._state()
            if not running:
                return _exit_status(code if code is not None else 0)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)


class DockerBackend(Backend):
    """Containers from the socket-lab node image on Docker bridge networks."""

    name = "docker"

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self._docker: docker.DockerClient | None = None
        self._ifaces: dict[str, dict[str, str]] = {}
        self._spawned = 0
        self._placeholders: list[IPv4Network] = []

    # -- engine access -------------------------------------------------------------------
    @property
    def _client(self) -> docker.DockerClient:
        if self._docker is None:
            self._docker = _client()
        return self._docker

    @property
    def _api(self) -> docker.APIClient:
        return self._client.api

    def _name(self, thing: str) -> str:
        return f"{PREFIX}-{self.run_id}-{thing}"

    def _labels(self, topology: Topology, **extra: str) -> dict[str, str]:
        return {
            RUN_LABEL: self.run_id,
            TOPOLOGY_LABEL: topology.name,
            BACKEND_LABEL: self.name,
            **extra,
        }

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    def available(cls) -> str | None:
        try:
            client = docker.from_env(timeout=10)
            client.ping()
            client.close()
        except (*_ENGINE_ERRORS, OSError):
            return (
                f"Docker engine not reachable at {_engine_url()} — is it running? "
                "use --backend netns"
            )
        if node_image() is None:
            return "socket-lab node image not built or out of date — run `lab images build`"
        return None

    def up(self, topology: Topology) -> None:
        image = node_image()
        if image is None:
            raise BackendError(
                "socket-lab node image not built or out of date — run `lab images build`"
            )
        for net in topology.networks:
            self._create_network(topology, net)

        def bring_up(node: Node) -> None:
            self._create_node(topology, node, image)
            self._configure_node(topology, node)

        # Nodes are independent once their networks exist; the engine does the work, so a
        # few at a time shortens a large lab's start several-fold.
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for future in [pool.submit(bring_up, node) for node in topology.nodes]:
                future.result()

    def _create_network(self, topology: Topology, net: Network) -> None:
        attached = sum(1 for n in topology.nodes if net.name in n.networks)
        seed = int(self.run_id, 16) + len(self._placeholders) * 7919
        for attempt, subnet in enumerate(placeholder_subnets(attached, seed)):
            pool = docker.types.IPAMPool(subnet=str(subnet))
            try:
                self._api.create_network(
                    self._name(net.name),
                    driver="bridge",
                    ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                    options={
                        # No NAT: nothing leaves the lab's bridges through the host.
                        "com.docker.network.bridge.enable_ip_masquerade": "false",
                        "com.docker.network.bridge.enable_icc": "true",
                    },
                    labels=self._labels(
                        topology, **{NETWORK_LABEL: net.name, SUBNET_LABEL: str(net.subnet)}
                    ),
                    check_duplicate=True,
                )
            except docker.errors.APIError as exc:
                # Another network (maybe another run's) holds this placeholder: next one.
                if "overlap" in str(exc.explanation) and attempt < PLACEHOLDER_TRIES:
                    continue
                raise BackendError(
                    f"docker: creating network {net.name}: {exc.explanation or exc}"
                ) from exc
            except _ENGINE_ERRORS as exc:
                raise BackendError(f"docker: creating network {net.name}: {exc}") from exc
            self._placeholders.append(subnet)
            return

    def _create_node(self, topology: Topology, node: Node, image: str) -> None:
        api = self._api
        first, *rest = node.interfaces
        host_config = api.create_host_config(
            network_mode=self._name(first.network),
            init=True,
            cap_drop=["ALL"],
            cap_add=CAPABILITIES,
            mem_limit=MEMORY_LIMIT,
            pids_limit=PIDS_LIMIT,
            # Explicit either way: a new network namespace inherits the host's setting,
            # and a host running Docker forwards.
            sysctls={"net.ipv4.ip_forward": "1" if node.router else "0"},
            # Names the engine's resolver cannot answer go nowhere (not to the host's DNS).
            dns=["127.0.0.1"],
        )
        endpoint = api.create_endpoint_config()
        with _engine(f"creating container for node {node.name}"):
            container = api.create_container(
                image,
                command=["sleep", "infinity"],
                name=self._name(node.name),
                hostname=node.name,
                labels=self._labels(topology, **{NODE_LABEL: node.name}),
                host_config=host_config,
                networking_config={"EndpointsConfig": {self._name(first.network): endpoint}},
            )
            for iface in rest:
                api.connect_container_to_network(container["Id"], self._name(iface.network))
            api.start(container["Id"])

    def _configure_node(self, topology: Topology, node: Node) -> None:
        """Real addresses, routes and directories, in one exec once the container runs."""
        macs = self._macs(node.name)
        spec = {
            "dirs": [str(self.workdir(node.name)), str(PID_ROOT / self.run_id)],
            "addresses": [
                [net, macs[net], f"{iface.address}/{topology.network(net).subnet.prefixlen}"]
                for iface in node.interfaces
                for net in [iface.network]
            ],
            "gateway": None if node.gateway is None else str(node.gateway),
        }
        done = self.run(node.name, [self.python, "-c", NODE_SETUP, json.dumps(spec)], timeout=30)
        if not done.ok:
            lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
            raise BackendError(f"docker: setting up node {node.name}: {lines[-1]}")
        self._ifaces[node.name] = json.loads(done.stdout)

    def _macs(self, node: str) -> dict[str, str]:
        """The node's MAC address on each of its lab networks, as the engine reports them."""
        with _engine(f"inspecting node {node}"):
            info = self._api.inspect_container(self._name(node))
        prefix = self._name("")
        return {
            net_name[len(prefix) :]: str(settings["MacAddress"]).lower()
            for net_name, settings in info["NetworkSettings"]["Networks"].items()
            if net_name.startswith(prefix)
        }

    def down(self) -> None:
        self._remove(self._client, {RUN_LABEL: self.run_id})
        self._ifaces.clear()

    @staticmethod
    def _remove(client: docker.DockerClient, match: Mapping[str, str]) -> list[str]:
        """Force-remove the containers, then the networks, carrying all of ``match``'s labels
        (and always the docker backend's label)."""
        labels = [f"{BACKEND_LABEL}=docker", *(f"{k}={v}" for k, v in match.items())]
        removed: list[str] = []
        api = client.api
        with _engine("listing the lab's containers"):
            containers = api.containers(all=True, filters={"label": labels})

        def remove_container(c: Mapping[str, Any]) -> str | None:
            name = str(c["Names"][0]).lstrip("/")
            # Disconnect first: force-removing many attached containers at once can leave
            # the engine counting endpoints that no longer exist, and the network stuck.
            for net in (c.get("NetworkSettings") or {}).get("Networks") or {}:
                with suppress(docker.errors.APIError):
                    api.disconnect_container_from_network(c["Id"], net, force=True)
            with _engine(f"removing container {name}"), suppress(docker.errors.NotFound):
                api.remove_container(c["Id"], force=True, v=True)
                return f"container {name}"
            return None

        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            futures = [pool.submit(remove_container, c) for c in containers]
            removed += [item for f in futures if (item := f.result()) is not None]
        with _engine("listing the lab's networks"):
            networks = api.networks(filters={"label": labels})
        stuck: list[str] = []
        for n in networks:
            try:
                with _engine(f"removing network {n['Name']}"), suppress(docker.errors.NotFound):
                    _remove_network(api, n["Id"])
                    removed.append(f"network {n['Name']}")
            except BackendError as exc:  # try every network before reporting
                stuck.append(str(exc))
        if stuck:
            raise BackendError(
                "; ".join(stuck) + " (the engine still counts endpoints of removed containers;"
                " restarting the Docker engine clears it)"
            )
        return removed

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        client = _client()
        try:
            return cls._remove(client, {RUN_LABEL: run_id} if run_id else {})
        finally:
            client.close()

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        client = _client()
        labels = [f"{BACKEND_LABEL}=docker"]
        try:
            with _engine("listing the lab's objects"):
                containers = client.api.containers(all=True, filters={"label": labels})
                networks = client.api.networks(filters={"label": labels})
        finally:
            client.close()
        runs: dict[str, tuple[str, int, int]] = {}
        for c in containers:
            rid, topo = c["Labels"].get(RUN_LABEL, "?"), c["Labels"].get(TOPOLOGY_LABEL, "?")
            _, nc, nn = runs.get(rid, (topo, 0, 0))
            runs[rid] = (topo, nc + 1, nn)
        for n in networks:
            labels_ = n.get("Labels") or {}
            rid, topo = labels_.get(RUN_LABEL, "?"), labels_.get(TOPOLOGY_LABEL, "?")
            _, nc, nn = runs.get(rid, (topo, 0, 0))
            runs[rid] = (topo, nc, nn + 1)
        return {
            rid: f"topology {topo}: {nc} containers, {nn} networks"
            for rid, (topo, nc, nn) in sorted(runs.items())
        }

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
        # The node enforces the timeout itself, so a command never outlives it there.
        limited = ["timeout", "-k", str(KILL_GRACE), f"{max(timeout, 0.01):g}", *argv]
        what = f"running {argv[0] if argv else '?'} on {node}"
        started = time.monotonic()
        with _engine(what):
            exec_id = self._api.exec_create(
                self._name(node), limited, stdin=input is not None, stdout=True, stderr=True
            )["Id"]
            sock = self._api.exec_start(exec_id, socket=True)
        try:
            stdout, stderr = self._talk(sock, input, timeout + KILL_GRACE + ENGINE_SLACK)
        except TimeoutError as exc:
            raise CommandTimeout(f"{what}: the engine did not answer in time") from exc
        except OSError as exc:
            raise BackendError(f"docker: {what}: {exc}") from exc
        with _engine(what):
            code = self._api.exec_inspect(exec_id).get("ExitCode")
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
                with _engine(what):
                    state = self._api.inspect_container(self._name(node)).get("State") or {}
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

    @staticmethod
    def _talk(sock: Any, data: str | None, limit: float) -> tuple[bytes, bytes]:
        """Write ``data`` to an attached exec's stdin, close it, read stdout and stderr."""
        raw: socket.socket = getattr(sock, "_sock", sock)  # the SDK wraps it in a SocketIO
        raw.settimeout(limit)
        try:
            if data is not None:
                raw.sendall(data.encode())
            with suppress(OSError):
                raw.shutdown(socket.SHUT_WR)
            return _read_streams(raw)
        finally:
            sock.close()

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        self._spawned += 1
        pidfile = PID_ROOT / self.run_id / f"{self._spawned}.pid"
        command = ["sh", "-c", SPAWN_SCRIPT, "sh", str(pidfile), str(log), *argv]
        what = f"starting {argv[0] if argv else '?'} on {node}"
        with _engine(what):
            exec_id = self._api.exec_create(self._name(node), command, stdout=False, stderr=False)[
                "Id"
            ]
            self._api.exec_start(exec_id, detach=True)
        done = self.run(node, ["sh", "-c", READ_PID_SCRIPT, "sh", str(pidfile)], timeout=10)
        if not done.ok or not done.stdout.strip().isdigit():
            raise BackendError(f"docker: {what}: no pid ({done.stderr.strip()})")
        return DockerProc(self, node, argv, exec_id, int(done.stdout.strip()))

    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        with _engine(f"copying {remote_dir} from {node}"):
            stream, _ = self._api.get_archive(self._name(node), str(remote_dir))
            with tempfile.TemporaryFile() as buf:
                for chunk in stream:
                    buf.write(chunk)
                buf.seek(0)
                self._extract(buf, local_dir)

    @staticmethod
    def _extract(buf: io.IOBase | Any, local_dir: Path) -> None:
        """Unpack the engine's archive of a directory into ``local_dir``, safely: the "data"
        filter refuses absolute paths, ``..``, device files and links leaving the target;
        such members are skipped."""
        with tarfile.open(fileobj=buf, mode="r|") as archive:
            for member in archive:
                # Members are "<dir's base name>/...": keep what is below the directory.
                parts = PurePosixPath(member.name).parts
                rel = PurePosixPath(*parts[1:]) if len(parts) > 1 else None
                if rel is None:
                    continue
                member.name = str(rel)
                # A member the filter refuses (say a link to /etc/passwd) is left out: it
                # is nothing the lab wrote, and must not stop the rest from being copied.
                with suppress(tarfile.FilterError):
                    archive.extract(member, local_dir, filter="data")

    def interfaces(self, node: str) -> Mapping[str, str]:
        if node not in self._ifaces:
            self._ifaces[node] = self._discover_interfaces(node)
        return dict(self._ifaces[node])

    def _discover_interfaces(self, node: str) -> dict[str, str]:
        """Network name -> interface name, matching the engine's MAC addresses."""
        macs = self._macs(node)
        done = self.run(node, [self.python, "-c", LIST_LINKS], timeout=15)
        by_mac: dict[str, str] = json.loads(done.stdout) if done.ok else {}
        result = {net: by_mac[mac] for net, mac in macs.items() if mac in by_mac}
        if len(result) != len(macs):
            raise BackendError(f"docker: node {node}: interfaces not found for {sorted(macs)}")
        return result
