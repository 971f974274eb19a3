"""Reaching the Docker engine, and the names and labels of a run's objects on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import docker.errors
import requests.exceptions

from lab.errors import BackendError
from lab.spec.model import Topology

PREFIX = "slab"
RUN_LABEL = "socket-lab.run"
TOPOLOGY_LABEL = "socket-lab.topology"
BACKEND_LABEL = "socket-lab.backend"
NODE_LABEL = "socket-lab.node"
NETWORK_LABEL = "socket-lab.network"

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


def run_labels(run_id: str, topology: Topology, **extra: str) -> dict[str, str]:
    return {
        RUN_LABEL: run_id,
        TOPOLOGY_LABEL: topology.name,
        BACKEND_LABEL: "docker",
        **extra,
    }
