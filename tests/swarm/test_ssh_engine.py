"""A swarm engine at an ``ssh://`` URL (tests/swarm/sshengine.py): a lab spread over the
machine's engine and the second one reached over SSH passes and leaves nothing, and an
engine whose host key is not known is refused before anything is made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.labcli import lab
from tests.swarm.sshengine import SshEngine
from tests.swarm.test_swarm import TOPOLOGIES, leftovers
from tests.swarm.twoengines import TwoEngines


@pytest.fixture
def ssh_engine(two_engines: TwoEngines, tmp_path: Path) -> Iterator[SshEngine]:
    made = SshEngine(two_engines, tmp_path / "sshengine")
    try:
        made.start()
        yield made
    finally:
        made.stop()


@pytest.mark.slow
def test_default_topology_passes_with_an_engine_over_ssh(
    two_engines: TwoEngines,
    ssh_engine: SshEngine,
    clients: dict[str, docker.DockerClient],
    tmp_path: Path,
) -> None:
    env = {"HOME": str(ssh_engine.home("student"))}
    engines = ssh_engine.engines_file(tmp_path)
    out = tmp_path / "out"
    done = lab("run", str(TOPOLOGIES / "default.yaml"), "--backend", "swarm",
               "--engines", str(engines), "--out", str(out), env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    hosts = {str(rec.get("host")).removeprefix("swarm engine ") for rec in run["nodes"].values()}
    assert hosts == {two_engines.manager_host, two_engines.worker_host}
    assert json.loads((out / "summary.json").read_text())["passed"] is True
    rid = run["run_id"]
    assert leftovers(clients, rid) == []
    listed = lab("ls", "--engines", str(engines), env=env)
    assert listed.returncode == 0 and rid not in listed.stdout, listed.stdout + listed.stderr


@pytest.mark.slow
def test_an_engine_whose_host_key_is_unknown_is_refused(
    two_engines: TwoEngines,
    ssh_engine: SshEngine,
    clients: dict[str, docker.DockerClient],
    tmp_path: Path,
) -> None:
    env = {"HOME": str(ssh_engine.home("stranger", known=False))}
    engines = ssh_engine.engines_file(tmp_path)
    out = tmp_path / "out"
    done = lab("run", str(TOPOLOGIES / "default.yaml"), "--backend", "swarm",
               "--engines", str(engines), "--out", str(out), env=env, timeout=300)  # fmt: skip
    assert done.returncode != 0, done.stderr
    said = done.stderr.strip().splitlines()
    assert len(said) == 1, done.stderr  # one line, no traceback
    assert f"engine {two_engines.worker_host} ({ssh_engine.url})" in said[0], said
    assert "host key is not in ~/.ssh/known_hosts" in said[0], said
    assert not (out / "run.json").exists()
    for c in clients.values():
        assert c.api.containers(all=True, filters={"label": "socket-lab.backend=swarm"}) == []
