"""Reaching the Docker engine, and the names and labels of a run's objects on it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import docker.errors
import requests.exceptions

from lab.errors import BackendError
from lab.run.backends.base import Owner
from lab.spec.model import Topology

PREFIX = "slab"
RUN_LABEL = "socket-lab.run"
TOPOLOGY_LABEL = "socket-lab.topology"
BACKEND_LABEL = "socket-lab.backend"
NODE_LABEL = "socket-lab.node"
NETWORK_LABEL = "socket-lab.network"
# "host/pid/start" of the process that made the object: `lab clean` spares a run whose
# maker lives on this host, registered or not.
OWNER_LABEL = "socket-lab.owner"

PARALLEL = 8  # engine requests in flight at once when starting or removing many nodes

ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@contextmanager
def engine(what: str) -> Iterator[None]:
    """Turn any engine error inside the block into one ``BackendError`` line."""
    try:
        yield
    except docker.errors.APIError as exc:
        detail = exc.explanation or str(exc)
        raise BackendError(f"docker: {what}: {detail}") from exc
    except ENGINE_ERRORS as exc:
        raise BackendError(f"docker: {what}: {exc}") from exc


def connect() -> docker.DockerClient:
    with engine(f"connecting to the engine at {engine_url()}"):
        return docker.from_env()


def object_name(run_id: str, thing: str) -> str:
    """The engine name of run ``run_id``'s container or network for ``thing``."""
    return f"{PREFIX}-{run_id}-{thing}"


def owner_label() -> str:
    me = Owner.me()
    return f"{socket.gethostname()}/{me.pid}/{me.start if me.start is not None else ''}"


def owner_of_label(value: str) -> Owner | None:
    """The owner a label names, if it is a process of this host."""
    host, _, rest = value.partition("/")
    pid, _, start = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return Owner(int(pid), int(start) if start.isdigit() else None)


def run_labels(
    run_id: str, topology: Topology, backend: str = "docker", **extra: str
) -> dict[str, str]:
    return {
        RUN_LABEL: run_id,
        TOPOLOGY_LABEL: topology.name,
        BACKEND_LABEL: backend,
        OWNER_LABEL: owner_label(),
        **extra,
    }
