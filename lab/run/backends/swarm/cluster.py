"""The swarm's engines: each reached at its URL, checked to be the swarm node the file names,
and which of them is a manager (the one that creates and removes the overlay networks)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.tls

from lab.errors import BackendError, UsageError
from lab.run.backends.docker.engine import ENGINE_ERRORS, engine, engine_url
from lab.run.backends.swarm.enginesfile import EnginesFile, EngineSpec

TIMEOUT = 60  # seconds per engine request: a load of the node image is one request
ID_PREFIX = 12  # the shortest ID prefix an engines file may name a swarm node by
BOOT_API_VERSION = "1.24"  # only for asking a TLS engine its own version


@dataclass
class Engine:
    """One engine of the swarm: its file entry, client, and who it is in the swarm."""

    spec: EngineSpec
    client: docker.DockerClient
    node_id: str
    hostname: str
    manager: bool

    @property
    def name(self) -> str:
        """How the lab names it: as the engines file does (the hostname without a file)."""
        return self.spec.name or self.hostname

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def where(self) -> str:
        return f"engine {self.name} ({self.spec.url})"

    @classmethod
    def answered(
        cls, spec: EngineSpec, client: docker.DockerClient, info: Mapping[str, Any]
    ) -> Engine:
        """The engine whose /info is ``info``: its swarm node, hostname and role."""
        swarm = info.get("Swarm") or {}
        return cls(
            spec,
            client,
            str(swarm.get("NodeID") or ""),
            str(info.get("Name") or ""),
            bool(swarm.get("ControlAvailable")),
        )


def default_engines() -> EnginesFile:
    """Without ``--engines``: the one engine of ``DOCKER_HOST``, named by its hostname."""
    return EnginesFile(Path("DOCKER_HOST"), (EngineSpec("", engine_url()),))


def client_for(spec: EngineSpec) -> docker.DockerClient:
    """A client for one engine. An ``ssh://`` engine goes through the SDK's paramiko
    transport, which checks the host key against ``~/.ssh/known_hosts`` and refuses an
    unknown one, as the ssh backend does by default."""
    tls: docker.tls.TLSConfig | bool = False
    if spec.tls is not None:
        tls = docker.tls.TLSConfig(
            client_cert=(str(spec.tls.cert), str(spec.tls.key)),
            ca_cert=str(spec.tls.ca),
            verify=True,
        )
    what = f"connecting to the engine of {spec.name or 'DOCKER_HOST'} at {spec.url}"
    if spec.url.startswith("ssh://"):
        with _over_ssh(spec), engine(what):
            return docker.DockerClient(base_url=spec.url, timeout=TIMEOUT)
    if spec.tls is None:
        with engine(what):
            return docker.DockerClient(base_url=spec.url, timeout=TIMEOUT)
    with engine(what):
        # The API version is asked once the session is set: requests would otherwise put
        # REQUESTS_CA_BUNDLE (the system's CAs) before the file's CA on every request, and
        # refuse the engine's certificate.
        client = docker.DockerClient(
            base_url=spec.url, tls=tls, timeout=TIMEOUT, version=BOOT_API_VERSION
        )
        client.api.trust_env = False
        client.api._version = str(client.version()["ApiVersion"])  # type: ignore[attr-defined]
    return client


@contextmanager
def _over_ssh(spec: EngineSpec) -> Iterator[None]:
    """The SSH transport's errors said with the engine: an unknown or changed host key is
    the user's to check (exit 2, nothing made), anything else an engine that cannot be
    reached."""
    import paramiko

    where = f"engine {spec.name} ({spec.url})"
    try:
        yield
    except paramiko.BadHostKeyException as exc:
        raise UsageError(
            f"{where}: its host key is not the one ~/.ssh/known_hosts holds for it; "
            "refused (the machine was replaced, or someone is in between): check with its "
            "owner before changing known_hosts"
        ) from exc
    except paramiko.SSHException as exc:
        if "known_hosts" not in str(exc):
            raise BackendError(f"{where}: ssh: {exc}") from exc
        raise UsageError(
            f"{where}: its host key is not in ~/.ssh/known_hosts, and the lab refuses an "
            "unknown host key as the ssh backend does: check its fingerprint with the "
            "machine's owner, then add it (ssh-keyscan HOST >> ~/.ssh/known_hosts)"
        ) from exc
    except OSError as exc:
        raise BackendError(f"{where}: ssh: {exc}") from exc


def _open(spec: EngineSpec) -> Engine:
    client = client_for(spec)
    try:
        with engine(f"asking the engine of {spec.name or 'DOCKER_HOST'} at {spec.url}"):
            info = client.info()
    except BaseException:
        client.close()
        raise
    try:
        problem = refusal(spec, info)
    except BaseException:
        client.close()
        raise
    if problem is not None:
        client.close()
        raise UsageError(problem)
    return Engine.answered(spec, client, info)


def refusal(spec: EngineSpec, info: Mapping[str, Any]) -> str | None:
    """Why the engine that answered ``info`` (the engine API's /info) cannot be the engine
    of ``spec``: not in a swarm, or another swarm node than the file names."""
    swarm = info.get("Swarm") or {}
    node_id, hostname = str(swarm.get("NodeID") or ""), str(info.get("Name") or "")
    where = f"engine {spec.name or hostname} ({spec.url})"
    if swarm.get("LocalNodeState") != "active":
        return (
            f"{where} is not in swarm mode (state: {swarm.get('LocalNodeState')}); "
            "the lab uses a swarm you run and never makes one: `docker swarm init` there, "
            "or choose --backend docker"
        )
    named = spec.name in (hostname, node_id) or (
        len(spec.name) >= ID_PREFIX and node_id.startswith(spec.name)
    )
    if spec.name and not named:
        return f"{where}: that URL reaches swarm node {hostname} (ID {node_id}), not {spec.name}"
    return None


@dataclass
class Cluster:
    """The open engines of a file; ``manager`` is the first manager among them."""

    file: EnginesFile
    engines: tuple[Engine, ...]

    @property
    def manager(self) -> Engine:
        for e in self.engines:
            if e.manager:
                return e
        raise AssertionError("a cluster is made with a manager")

    def by_name(self, name: str) -> Engine:
        for e in self.engines:
            if name in (e.name, e.hostname, e.node_id):
                return e
        raise UsageError(
            f"no engine {name!r} in {self.file.path} (engines: {', '.join(self.names())})"
        )

    def names(self) -> list[str]:
        return [e.name for e in self.engines]

    def __iter__(self) -> Iterator[Engine]:
        return iter(self.engines)

    def close(self) -> None:
        for e in self.engines:
            with suppress(*ENGINE_ERRORS, OSError):
                e.client.close()


def open_cluster(file: EnginesFile) -> Cluster:
    """Every engine of ``file``, checked; refused unless one of them manages the swarm and
    all are nodes of the same swarm."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(_open, spec) for spec in file.engines]
    opened: list[Engine] = []
    errors: list[BaseException] = []
    for f in futures:
        try:
            opened.append(f.result())
        except (BackendError, UsageError) as exc:
            errors.append(exc)
    cluster = Cluster(file, tuple(opened))
    if errors:
        cluster.close()
        raise errors[0]
    if not any(e.manager for e in opened):
        cluster.close()
        where = ", ".join(e.where() for e in opened)
        raise UsageError(
            f"{where}: a worker of the swarm, not a manager; overlay networks are made "
            f"through a manager: add a manager's engine to {file.path}"
        )
    _check_one_swarm(cluster)
    return cluster


def _check_one_swarm(cluster: Cluster) -> None:
    with engine(f"listing the swarm's nodes on {cluster.manager.where()}"):
        members = {n["ID"] for n in cluster.manager.api.nodes()}
    strangers = [e for e in cluster if e.node_id not in members]
    if strangers:
        cluster.close()
        raise UsageError(
            f"{strangers[0].where()} is in another swarm than {cluster.manager.where()}"
        )
