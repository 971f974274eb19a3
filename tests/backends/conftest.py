"""The backend contract's fixtures: each backend class that can run here, and fresh runs of
it that are torn down, and found clean, at the end of the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from lab.run.backends import backend_class
from lab.run.backends.base import Backend, new_run_id
from lab.spec.model import Topology
from tests.backends.contract_kit import BACKENDS, CAPABILITY
from tests.ssh.hosts import ssh_hosts

__all__ = ["ssh_hosts"]  # the ssh tier's fixture, for CAPABILITY["ssh"]


@pytest.fixture(params=[pytest.param(name, marks=getattr(pytest.mark, name)) for name in BACKENDS])
def backend_cls(request: pytest.FixtureRequest) -> type[Backend]:
    provided = request.getfixturevalue(CAPABILITY[request.param])
    if isinstance(provided, type):  # a fixture that hands over its own backend class
        assert issubclass(provided, Backend), provided
        cls = provided
    else:
        cls = backend_class(request.param)
    reason = cls.available()
    assert reason is None, reason
    return cls


@pytest.fixture
def make(backend_cls: type[Backend]) -> Iterator[Callable[[Topology], Backend]]:
    """Bring topologies up on fresh run ids; every one is torn down at the end."""
    started: list[Backend] = []

    def up(topology: Topology) -> Backend:
        backend = backend_cls(new_run_id())
        started.append(backend)
        backend.up(topology)
        return backend

    yield up
    for backend in started:
        backend.down()
        assert backend_cls.clean(backend.run_id) == []
