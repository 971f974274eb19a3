"""A snapshot where every node sees the same processes takes ps once (lab.run.collect).

The nodes of the netns backend share this host's PID namespace, so `ps -e` prints the same
table on each; it runs on the first node and every node keeps a copy. The session here is
a stand-in that answers commands from a table: the logic of who is asked, not the tools
(the netns runs in tests/run and tests/experiments use the real ones)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

import pytest

from lab.errors import BackendError
from lab.run.backends.base import Completed
from lab.run.collect import snapshot
from lab.run.session import Session
from lab.spec.topology import load_topology
from tests.labcli import ROOT

NODES = ["server", "client1", "client2"]


class Backend:
    def __init__(self, shares: bool) -> None:
        self.shares_process_table = shares


class Stand:
    """What ``snapshot`` uses of a Session; ``dead`` nodes cannot be read."""

    def __init__(self, folder: Path, shares: bool, dead: set[str]) -> None:
        self.topology = load_topology(ROOT / "topologies" / "default.yaml")
        self.backend = Backend(shares)
        self.folder = folder
        self.dead = dead
        self.asked: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def node_dir(self, node: str) -> Path:
        return self.folder / node

    def run(self, node: str, argv: list[str], timeout: float) -> Completed:
        with self.lock:
            self.asked.append((node, argv[0]))
        if node in self.dead:
            raise BackendError(f"node {node} is gone")
        return Completed(tuple(argv), 0, f"{argv[0]} as seen on {node}\n", "")


def take(
    tmp_path: Path, shares: bool, dead: frozenset[str] = frozenset()
) -> tuple[Stand, dict[str, str]]:
    stand = Stand(tmp_path, shares, set(dead))
    errors = snapshot(cast(Session, cast(Any, stand)), "before", NODES)
    return stand, errors


def ps_of(tmp_path: Path, node: str) -> str:
    return (tmp_path / node / "snapshots" / "before.ps.txt").read_text()


def test_shared_process_table_ps_once_copied_to_every_node(tmp_path: Path) -> None:
    stand, errors = take(tmp_path, shares=True)
    assert errors == {}
    assert [n for n, tool in stand.asked if tool == "ps"] == ["server"]
    assert {ps_of(tmp_path, n) for n in NODES} == {"ps as seen on server\n"}
    assert sorted(n for n, tool in stand.asked if tool == "netstat") == sorted(NODES)


def test_own_process_tables_each_node_is_asked(tmp_path: Path) -> None:
    stand, errors = take(tmp_path, shares=False)
    assert errors == {}
    assert sorted(n for n, tool in stand.asked if tool == "ps") == sorted(NODES)
    assert ps_of(tmp_path, "client2") == "ps as seen on client2\n"


@pytest.mark.parametrize("dead", [{"server"}, {"server", "client1"}])
def test_a_dead_first_node_leaves_the_others_asked_themselves(
    tmp_path: Path, dead: set[str]
) -> None:
    _, errors = take(tmp_path, shares=True, dead=frozenset(dead))
    assert set(errors) == dead
    alive = [n for n in NODES if n not in dead]
    for node in alive:
        assert ps_of(tmp_path, node) == f"ps as seen on {node}\n"
    assert not any((tmp_path / n / "snapshots" / "before.ps.txt").exists() for n in dead)
