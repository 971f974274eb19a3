"""Fixtures for the docker backend and image tests: a real engine and the built node image."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import docker
import pytest

from lab.run.backends.base import new_run_id
from lab.run.backends.docker import BACKEND_LABEL, RUN_LABEL, DockerBackend
from lab.spec.model import Topology

# Label of throwaway containers the image tests start, so that they are always removed.
TEST_LABEL = "socket-lab.test"


@pytest.fixture
def docker_ready(docker_engine: None) -> None:
    """The engine answers and the node image is built and up to date (`.ci/setup` builds it)."""


@pytest.fixture
def engine(docker_ready: None) -> Iterator[docker.DockerClient]:
    """A client of our own, to look at what the backend made independently of its code."""
    client = docker.from_env()
    yield client
    for c in client.containers.list(all=True, filters={"label": TEST_LABEL}):
        c.remove(force=True)
    client.close()


def labelled(client: docker.DockerClient, run_id: str) -> list[str]:
    """Containers and networks carrying a run's label, as the engine lists them."""
    labels = [f"{RUN_LABEL}={run_id}", f"{BACKEND_LABEL}=docker"]
    containers = client.containers.list(all=True, filters={"label": labels})
    names = [f"container {c.name}" for c in containers]
    names += [f"network {n.name}" for n in client.networks.list(filters={"label": labels})]
    return sorted(names)


@pytest.fixture
def lab_up(engine: docker.DockerClient) -> Iterator[Callable[[Topology], DockerBackend]]:
    """Bring topologies up on fresh run ids; each is torn down (and checked gone) at the end,
    whatever the test did."""
    started: list[DockerBackend] = []

    def up(topology: Topology) -> DockerBackend:
        backend = DockerBackend(new_run_id())
        started.append(backend)
        backend.up(topology)
        return backend

    yield up
    for backend in started:
        backend.down()
    for backend in started:
        assert labelled(engine, backend.run_id) == []
