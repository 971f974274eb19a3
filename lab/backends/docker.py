"""The docker backend: one container per node, one bridge network per topology network.

Everything goes through the Docker Engine API (docker SDK); no SDK object leaves this module
and every engine error becomes ``BackendError``. Each container and network is named
``slab-<rid>-<name>`` and labelled with the run id, topology and backend, and ``down`` /
``clean`` find what to remove by those labels only.

Networks are plain (not ``internal``) bridges with IP masquerading switched off, and every
container's engine-made default route is removed at start. ``internal=True`` cannot be used:
with the host's bridge netfilter on, the engine's isolation rules for internal networks drop
bridged frames whose addresses lie outside the bridge's own subnet, which is exactly the
traffic a router node forwards between two lab networks. Without a default route towards the
host and without NAT, no node reaches anything but the lab's own networks.

Containers run unprivileged: every capability dropped, then only
NET_ADMIN (routes, promiscuous capture), NET_RAW (packet sockets for tcpdump, ping),
SETUID + SETGID + CHOWN (tcpdump switches to its own user and hands it the capture file;
without these it exits "Couldn't change to 'tcpdump'"), and KILL (stopping that tcpdump,
which no longer runs as root). ``init`` (docker-init) is PID 1 so that the double-fork
server's orphans are reaped.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from ipaddress import IPv4Address
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from lab.backends.base import Backend, Completed, Proc
from lab.errors import BackendError, CommandTimeout
from lab.images import node_image
from lab.model import Network, Node, Topology

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
# Extra seconds the client waits past a command's own timeout before giving up on the engine.
ENGINE_SLACK = 15.0

WORK_ROOT = PurePosixPath("/var/lib/socket-lab")
PID_ROOT = PurePosixPath("/run/socket-lab")

# The spawn wrapper: positional parameters are the pidfile, the log, then the command.
# No value is ever pasted into this text.
SPAWN_SCRIPT = 'echo $$ > "$1"; log=$2; shift 2; exec "$@" > "$log" 2>&1'
# Waits (inside the node) for a spawn's pidfile and prints it.
READ_PID_SCRIPT = 'while [ ! -s "$1" ]; do sleep 0.01; done; cat "$1"'

_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


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


def gateway_address(network: Network, used: set[IPv4Address]) -> IPv4Address:
    """The address the engine takes on the bridge: the highest host address no node uses."""
    hosts = list(network.subnet.hosts())
    for address in reversed(hosts):
        if address not in used:
            return address
    raise BackendError(
        f"network {network.name} ({network.subnet}) has no free address left for the "
        "docker bridge; use a larger subnet or the netns backend"
    )


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
        for node in topology.nodes:
            self._create_node(topology, node, image)
        for node in topology.nodes:
            self._configure_node(topology, node)

    def _create_network(self, topology: Topology, net: Network) -> None:
        used = {a for n in topology.nodes for i in n.interfaces if i.network == net.name
                for a in [i.address]}  # fmt: skip
        gateway = gateway_address(net, used)
        pool = docker.types.IPAMPool(subnet=str(net.subnet), gateway=str(gateway))
        with _engine(f"creating network {net.name}"):
            self._api.create_network(
                self._name(net.name),
                driver="bridge",
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                options={
                    # No NAT towards the host's own networks: the lab stays on its bridges.
                    "com.docker.network.bridge.enable_ip_masquerade": "false",
                    "com.docker.network.bridge.enable_icc": "true",
                },
                labels=self._labels(topology, **{NETWORK_LABEL: net.name}),
                check_duplicate=True,
            )

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
            sysctls={"net.ipv4.ip_forward": "1"} if node.router else None,
            # Names the engine's resolver cannot answer go nowhere (not to the host's DNS).
            dns=["127.0.0.1"],
        )
        endpoint = api.create_endpoint_config(ipv4_address=str(first.address))
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
                api.connect_container_to_network(
                    container["Id"], self._name(iface.network), ipv4_address=str(iface.address)
                )
            api.start(container["Id"])

    def _configure_node(self, topology: Topology, node: Node) -> None:
        """Routes and directories, once the container runs."""
        steps: list[list[str]] = [
            ["mkdir", "-p", str(self.workdir(node.name)), str(PID_ROOT / self.run_id)],
            # The engine's default route points at the host; the lab's never do.
            ["ip", "route", "del", "default"],
        ]
        if node.gateway is not None:
            steps.append(["ip", "route", "replace", "default", "via", str(node.gateway)])
        for argv in steps:
            done = self.run(node.name, argv, timeout=15)
            if not done.ok and argv[:3] != ["ip", "route", "del"]:
                raise BackendError(
                    f"docker: {' '.join(argv)} on {node.name} failed: {done.stderr.strip()}"
                )
        self._ifaces[node.name] = self._discover_interfaces(node.name)

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
        for c in containers:
            name = c["Names"][0].lstrip("/")
            with _engine(f"removing container {name}"), suppress(docker.errors.NotFound):
                api.remove_container(c["Id"], force=True, v=True)
                removed.append(f"container {name}")
        with _engine("listing the lab's networks"):
            networks = api.networks(filters={"label": labels})
        for n in networks:
            with _engine(f"removing network {n['Name']}"), suppress(docker.errors.NotFound):
                api.remove_network(n["Id"])
                removed.append(f"network {n['Name']}")
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
        return WORK_ROOT / self.run_id

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        # The node enforces the timeout itself, so a command never outlives it there.
        limited = ["timeout", "-k", str(KILL_GRACE), f"{max(timeout, 0.01):g}", *argv]
        what = f"running {argv[0] if argv else '?'} on {node}"
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
        if returncode in (124, 137):
            raise CommandTimeout(f"{' '.join(argv)} on {node} did not finish in {timeout:g} s")
        return Completed(
            tuple(argv),
            returncode,
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace"),
        )

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
        filter refuses absolute paths, ``..``, device files and links leaving the target."""
        with tarfile.open(fileobj=buf, mode="r|") as archive:
            for member in archive:
                # Members are "<dir's base name>/...": keep what is below the directory.
                parts = PurePosixPath(member.name).parts
                rel = PurePosixPath(*parts[1:]) if len(parts) > 1 else None
                if rel is None:
                    continue
                member.name = str(rel)
                archive.extract(member, local_dir, filter="data")

    def interfaces(self, node: str) -> Mapping[str, str]:
        if node not in self._ifaces:
            self._ifaces[node] = self._discover_interfaces(node)
        return dict(self._ifaces[node])

    def _discover_interfaces(self, node: str) -> dict[str, str]:
        """Network name -> interface name, matching the engine's addresses to ``ip addr``."""
        with _engine(f"inspecting node {node}"):
            info = self._api.inspect_container(self._name(node))
        prefix = self._name("")
        by_address = {
            settings["IPAddress"]: net_name[len(prefix):]
            for net_name, settings in info["NetworkSettings"]["Networks"].items()
            if net_name.startswith(prefix) and settings.get("IPAddress")
        }  # fmt: skip
        done = self.run(node, ["ip", "-o", "-4", "addr", "show"], timeout=10)
        result: dict[str, str] = {}
        for line in done.stdout.splitlines():
            words = line.split()
            if len(words) >= 4 and words[2] == "inet":
                address = words[3].split("/")[0]
                if address in by_address:
                    result[by_address[address]] = words[1].split("@")[0]
        missing = set(by_address.values()) - set(result)
        if missing:
            raise BackendError(f"docker: node {node} has no interface for {sorted(missing)}")
        return result
