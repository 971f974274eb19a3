"""Fixtures of the swarm tests (the two-engine swarm itself is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.swarm.twoengines import TwoEngines


@pytest.fixture
def clients(two_engines: TwoEngines) -> Iterator[dict[str, docker.DockerClient]]:
    """A client of each engine, by its swarm node's hostname: the tests' own view."""
    made = {
        two_engines.manager_host: docker.DockerClient(base_url=two_engines.manager_url),
        two_engines.worker_host: docker.DockerClient(base_url=two_engines.worker_url),
    }
    yield made
    for c in made.values():
        c.close()
