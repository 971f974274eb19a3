"""The backend contract, tearing down: ``down`` and ``clean`` remove every object of a run,
after a failed ``up`` too, and spare every other run's, on every real backend."""

from __future__ import annotations

import pytest

from lab.errors import BackendError
from lab.run.backends.base import Backend, new_run_id
from lab.spec.model import Node, Topology
from tests.backends.contract_kit import (
    TCP_CLIENT,
    TCP_ECHO,
    A,
    lan,
    py,
    routed,
)

# -- tearing down ---------------------------------------------------------------------------


def test_down_removes_everything_and_is_idempotent(backend_cls: type[Backend]) -> None:
    backend = backend_cls(new_run_id())
    try:
        backend.up(routed())
        assert backend.run_id in backend_cls.running_labs()
        proc = backend.spawn(
            "r", [backend.python, "-c", "import time; time.sleep(60)"],
            log=backend.workdir("r") / "sleep.log",
        )  # fmt: skip
        assert proc.running()
    finally:
        backend.down()
    assert not proc.running()
    assert backend.run_id not in backend_cls.running_labs()
    assert backend_cls.clean(backend.run_id) == []
    backend.down()
    assert backend_cls.clean(backend.run_id) == []


def test_down_after_a_failed_up_leaves_nothing(backend_cls: type[Backend]) -> None:
    topo = routed()
    # A gateway on no attached subnet: found only once addresses are set, part-way up.
    h1 = topo.node("h1")
    broken = Node(h1.name, h1.interfaces, gateway=A("192.0.2.1"))
    topo = Topology("broken", topo.networks, (*topo.nodes[1:], broken))
    backend = backend_cls(new_run_id())
    try:
        with pytest.raises(BackendError):
            backend.up(topo)
    finally:
        backend.down()
    assert backend.run_id not in backend_cls.running_labs()
    assert backend_cls.clean(backend.run_id) == []


def test_clean_removes_a_run_whose_owner_never_called_down(backend_cls: type[Backend]) -> None:
    backend = backend_cls(new_run_id())
    try:
        backend.up(lan("h1", "h2"))
        proc = backend.spawn(
            "h1", [backend.python, "-c", "import time; time.sleep(60)"],
            log=backend.workdir("h1") / "s.log",
        )  # fmt: skip
        removed = backend_cls.clean(backend.run_id)
        assert removed
        assert not proc.running()
        assert backend.run_id not in backend_cls.running_labs()
        assert backend_cls.clean(backend.run_id) == []
    finally:
        backend.down()


def test_two_runs_of_one_topology_do_not_collide(backend_cls: type[Backend]) -> None:
    topo = lan("srv", "cli")
    first, second = backend_cls(new_run_id()), backend_cls(new_run_id())
    try:
        first.up(topo)
        second.up(topo)
        for backend, tag in ((first, "first"), (second, "second")):
            backend.spawn(
                "srv", [backend.python, "-c", TCP_ECHO, "7004"],
                log=backend.workdir("srv") / "echo.log",
            )  # fmt: skip
            assert (
                py(backend, "cli", TCP_CLIENT, "10.20.0.10", "7004", tag).strip() == f"echo {tag}"
            )
        first.down()
        # The second run is untouched by the first one's teardown, and still works.
        assert second.run_id in backend_cls.running_labs()
        assert py(second, "cli", TCP_CLIENT, "10.20.0.10", "7004", "again").strip() == "echo again"
    finally:
        first.down()
        second.down()
    assert backend_cls.clean(first.run_id) == []
    assert backend_cls.clean(second.run_id) == []


def test_teardown_of_one_run_spares_another_runs_objects(backend_cls: type[Backend]) -> None:
    ours, theirs = backend_cls(new_run_id()), backend_cls(new_run_id())
    try:
        theirs.up(lan("h1"))
        proc = theirs.spawn(
            "h1", [theirs.python, "-c", "import time; time.sleep(60)"],
            log=theirs.workdir("h1") / "s.log",
        )  # fmt: skip
        py(
            theirs,
            "h1",
            "import sys; open(sys.argv[1], 'w').write('x')",
            str(theirs.workdir("h1") / "f"),
        )
        ours.up(lan("h1"))
        ours.down()
        assert backend_cls.clean(ours.run_id) == []
        assert proc.running()
        assert theirs.run_id in backend_cls.running_labs()
        assert (
            py(
                theirs,
                "h1",
                "import sys; print(open(sys.argv[1]).read())",
                str(theirs.workdir("h1") / "f"),
            ).strip()
            == "x"
        )
    finally:
        ours.down()
        theirs.down()
    assert not proc.running()
