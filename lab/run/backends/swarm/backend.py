"""The swarm backend class (see the package doc): the docker backend with one engine per node."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath

import docker

from lab.deploy.images import node_image
from lab.errors import BackendError, CommandTimeout, UsageError
from lab.run.backends.base import Completed, Owner, Proc
from lab.run.backends.docker import bringup
from lab.run.backends.docker import netem as netem_mod
from lab.run.backends.docker.backend import DockerBackend
from lab.run.backends.docker.engine import NODE_LABEL, RUN_LABEL, run_labels
from lab.run.backends.swarm import overlay, spread
from lab.run.backends.swarm.cluster import Cluster, Engine, default_engines, open_cluster
from lab.run.backends.swarm.enginesfile import EnginesFile
from lab.run.backends.swarm.images import ensure_image
from lab.run.backends.swarm.placement import place
from lab.spec.model import Node, Topology
from lab.spec.netem import Direction, Netem

ENGINE_LABEL = "socket-lab.engine"
# argv[1] is the command's stdin, the rest the command; its exit status is the command's.
FEED_STDIN = (
    "import subprocess, sys; "
    "sys.exit(subprocess.run(sys.argv[2:], input=sys.argv[1].encode()).returncode)"
)
NAME = "swarm"


class SwarmBackend(DockerBackend):
    """Containers on the engines of a Docker Swarm, joined by attachable overlay networks."""

    name = NAME
    engines_file: EnginesFile | None = None

    @classmethod
    def configured(cls, engines: EnginesFile | None) -> type[SwarmBackend]:
        """This backend on the engines of ``engines`` (the session makes backends from a
        class); without a file, the one engine of ``DOCKER_HOST``."""
        return type(cls.__name__, (cls,), {"engines_file": engines})

    @classmethod
    def _file(cls) -> EnginesFile:
        return cls.engines_file or default_engines()

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self._swarm: Cluster | None = None
        self._where: dict[str, Engine] = {}

    def _cluster_open(self) -> Cluster:
        if self._swarm is None:
            self._swarm = open_cluster(self._file())
        return self._swarm

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    def available(cls) -> str | None:
        try:
            cluster = open_cluster(cls._file())
        except (UsageError, BackendError) as exc:
            return str(exc)
        cluster.close()
        if node_image() is None:
            return "socket-lab node image not built or out of date — run `lab images build`"
        return None

    @classmethod
    def topology_problems(cls, topology: Topology) -> list[str]:
        names = cls._file().names() if cls.engines_file is not None else None
        return netem_mod.netem_problems(topology) + overlay.problems(topology, names)

    def up(self, topology: Topology) -> None:
        cluster = self._cluster_open()
        fixed = {n.name: cluster.by_name(n.engine).name for n in topology.nodes if n.engine}
        where = place(topology, cluster.names(), fixed)
        self._where = {node: cluster.by_name(name) for node, name in where.items()}
        super().up(topology)
        self._introduce(topology)

    def _introduce(self, topology: Topology) -> None:
        """Every node's permanent neighbours: the overlay answers ARP for the engine's own
        (placeholder) addresses only."""
        macs = {n.name: self._macs(n.name) for n in topology.nodes}
        for node in topology.nodes:
            entries = overlay.neighbours(topology, node, self.interfaces(node.name), macs)
            done = self.run(
                node.name, [self.python, "-c", overlay.NEIGHBOURS, json.dumps(entries)], timeout=30
            )
            if not done.ok:
                lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
                raise BackendError(f"swarm: neighbours of node {node.name}: {lines[-1]}")

    def _image(self, topology: Topology) -> str:
        image = super()._image(topology)
        used = {e.name: e for e in self._where.values()}
        ensure_image(used.values(), image)
        return image

    def _make_networks(self, topology: Topology) -> None:
        cluster = self._cluster_open()
        taken = overlay.taken_subnets(cluster.manager)
        for k, net in enumerate(topology.networks):
            attached = sum(1 for n in topology.nodes if net.name in n.networks)
            seed = int(self.run_id, 16) + k * 7919
            subnet = overlay.placeholder(net, attached, len(cluster.engines), seed, taken)
            overlay.create_network(cluster.manager, self.run_id, topology, net, subnet)
            taken.append(subnet)

    def _make_node(self, topology: Topology, node: Node, image: str) -> None:
        where = self._where[node.name]
        labels = run_labels(
            self.run_id, topology, NAME, **{NODE_LABEL: node.name, ENGINE_LABEL: where.name}
        )
        bringup.create_node(where.api, self.run_id, topology, node, image, labels=labels)

    def _node_api(self, node: str) -> docker.APIClient:
        where = self._where.get(node)
        if where is None:
            raise BackendError(f"no node {node!r} in this lab")
        return where.api

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        where = self._where.get(node)
        if input is None or where is None or where.spec.tls is None:
            with self._named(node):
                return super().run(node, argv, timeout=timeout, input=input)
        # Over TLS stdin cannot be ended (no half-close): the node's Python feeds it.
        fed = [self.python, "-c", FEED_STDIN, input, *argv]
        with self._named(node):
            done = super().run(node, fed, timeout=timeout)
        return replace(done, argv=tuple(argv))

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        with self._named(node):
            return super().spawn(node, argv, log=log)

    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        with self._named(node):
            super().fetch(node, remote_dir, local_dir)

    @contextmanager
    def _named(self, node: str) -> Iterator[None]:
        """An engine's error on a node, with the engine named: the one that stopped
        answering is what the user has to see to."""
        try:
            yield
        except CommandTimeout:
            raise
        except BackendError as exc:
            where = self._where.get(node)
            if where is None or where.where() in str(exc):
                raise
            raise BackendError(f"{exc} (node {node} is on {where.where()})") from exc

    def node_info(self, node: str) -> Mapping[str, str]:
        where = self._where.get(node)
        return {"host": f"swarm engine {where.name}"} if where is not None else {}

    def engine_of(self, node: str) -> str:
        """The name of the engine that runs ``node``."""
        return self._where[node].name

    def docker_options(self, node: str) -> list[str]:
        """The ``docker`` command's global options that reach the engine of ``node`` (the
        live lab's ``exec``, ``shell`` and ``capture`` go through the docker command)."""
        return self._where[node].spec.cli_options()

    @classmethod
    def engines_path(cls) -> str | None:
        """The engines file this backend was configured with, absolute (None: DOCKER_HOST)."""
        return str(cls.engines_file.path.resolve()) if cls.engines_file is not None else None

    def set_netem(self, node: str, network: str, direction: Direction, netem: Netem | None) -> None:
        if direction == "ingress":
            raise UsageError(overlay.NO_INGRESS)
        super().set_netem(node, network, direction, netem)

    def down(self) -> None:
        if self._swarm is None:
            self._swarm = spread.open_lenient(self._file())[0]
        spread.remove_run(self._swarm, {RUN_LABEL: self.run_id})
        self._ifaces.clear()

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        cluster, unreachable = spread.open_lenient(cls._file())
        try:
            removed = spread.remove_run(cluster, {RUN_LABEL: run_id} if run_id else {})
        finally:
            cluster.close()
        if unreachable:
            raise BackendError("; ".join(unreachable) + f" (removed elsewhere: {len(removed)})")
        return removed

    @classmethod
    def owner(cls, run_id: str) -> Owner | None:
        cluster, _ = spread.open_lenient(cls._file())
        try:
            return spread.owner(cluster, run_id)
        finally:
            cluster.close()

    @classmethod
    def collect_leftovers(cls, run_id: str, out_dir: Path) -> list[str]:
        cluster, _ = spread.open_lenient(cls._file())
        try:
            return [
                f"{item} (engine {e.name})"
                for e in cluster
                for item in cls._collect_from(e.client, run_id, out_dir)
            ]
        finally:
            cluster.close()

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        cluster, _ = spread.open_lenient(cls._file())
        try:
            return spread.describe_runs(cluster)
        finally:
            cluster.close()
