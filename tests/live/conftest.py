"""Fixtures of the live-lab tests: a registry of the test's own whose labs are all taken
down at the end, and ssh hosts brought up for a topology to run a live lab on."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.run.backends.base import Owner
from lab.spec.topology import load_topology
from tests.labcli import lab
from tests.ssh.hosts import World, worlds
from tests.ssh.test_ssh import ssh_topology

__all__ = ["SshLab", "docker_env", "env", "kill_supervisor", "ssh_lab", "supervisor", "worlds"]


def supervisor(state: dict[str, Any]) -> Owner:
    """A live lab's supervisor as its state file records it, by pid and start time, as `lab
    down` knows it: once the supervisor is gone, its pid alone may be another process's."""
    return Owner(int(state["pid"]), int(state["pid_start"]))


def kill_supervisor(state: dict[str, Any]) -> None:
    """SIGKILL a live lab's supervisor, as a crash would, and wait (10 s at most) for it to
    have gone, so that the lab is stale for what the test runs next."""
    owner = supervisor(state)
    os.kill(owner.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while owner.alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def _registry(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment that points the lab commands at a registry of this test's own; at
    the end, every lab still in it is taken down, and cleaned should `lab down` fail."""
    state = {"SOCKET_LAB_STATE": str(tmp_path / "state")}
    yield state
    for path in (tmp_path / "state" / "live").glob("*.json"):
        lab("down", path.stem, env=state)
        lab("clean", "--run-id", path.stem, env=state)


@pytest.fixture
def env(tmp_path: Path, root: None) -> Iterator[dict[str, str]]:
    """The registry of a test of netns labs."""
    yield from _registry(tmp_path)


@pytest.fixture
def docker_env(tmp_path: Path, docker_engine: None) -> Iterator[dict[str, str]]:
    """The registry of a test of Docker labs."""
    yield from _registry(tmp_path)


@dataclass(frozen=True)
class SshLab:
    """A topology's ssh hosts, the topology rewritten to reach them, and the environment of
    the lab commands (the registry the ``worlds`` fixture set up for the test)."""

    world: World
    topology: Path
    known_hosts: Path
    env: dict[str, str]

    def up_args(self, out: Path) -> tuple[str, ...]:
        """What follows ``lab up`` to bring this lab up, its results going to ``out``."""
        return (str(self.topology), "--backend", "ssh",
                "--known-hosts", str(self.known_hosts), "--out", str(out))  # fmt: skip

    def state(self) -> dict[str, Any]:
        """The state file of the one live lab in the registry."""
        live = Path(self.env["SOCKET_LAB_STATE"], "live")
        return dict(json.loads(next(live.glob("*.json")).read_text()))


@pytest.fixture
def ssh_lab(
    worlds: Callable[..., World],
    tmp_path: Path,
) -> Callable[[Path], SshLab]:
    """Hosts for the topology file given, brought up (and torn down at the end). Each call
    makes hosts of its own, its topology and known_hosts files in their folder: two labs'
    files never overwrite each other."""

    def make(source: Path) -> SshLab:
        world = worlds(load_topology(source))
        topology = ssh_topology(world, source, world.dir / f"ssh-{source.name}")
        known = world.known_hosts(world.dir / "kh")
        return SshLab(world, topology, known, {"SOCKET_LAB_STATE": os.environ["SOCKET_LAB_STATE"]})

    return make
