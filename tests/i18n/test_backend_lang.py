"""The backends' errors a user meets most, in Chinese: no Docker engine, no root for
netns, an unknown backend, none usable, what netem Docker cannot do, the ssh backend's
refusals, a build that failed; made by the backends' own code, the English as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.errors import LOCATED, BackendUnavailable, TopologyError, read_back
from lab.i18n import set_lang, using
from lab.run.backends import choose_backend
from lab.run.backends.docker.netem import NO_NETEM_DOCKER
from lab.run.backends.ssh.refusals import refusals
from lab.run.userbuild import build_failure
from lab.spec.model import UserProgram
from lab.spec.topology import load_topology_text
from tests.i18n.words import english_words
from tests.labcli import lab

NOWHERE = "unix:///nonexistent/docker.sock"
NAMES = ("docker", "netns", "paramiko", "rate", "loss", "delay", "root", "apt-get", "boom",
         "main", "error", "sch_netem", "modprobe", "netem", "Docker", "mine", "server",
         "client", "swarm")  # fmt: skip
SSH_TOPOLOGY = """
name: far
networks:
  lan: {subnet: 10.77.1.0/24, netem: {loss: 5%}}
nodes:
  server: {interfaces: {lan: 10.77.1.10}, ssh: {host: 10.77.1.10}}
  client: {interfaces: {lan: 10.77.1.11}}
"""


@pytest.fixture(autouse=True)
def _lang() -> Iterator[None]:
    yield
    set_lang("en")


def backend_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The English the backends say, each from its own code path."""
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)
    said = []
    for name in ("docker", "bogus", "auto"):
        with pytest.raises(BackendUnavailable) as caught:
            if name == "auto":
                monkeypatch.setattr("os.geteuid", lambda: 1000)
            choose_backend(name)
        said.append(str(caught.value))
    said.append(f"{NO_NETEM_DOCKER} (asked for: loss)")
    with pytest.raises(TopologyError) as bad:
        load_topology_text(SSH_TOPOLOGY)  # every node or none: said by the spec
    said += bad.value.problems
    topology = load_topology_text(SSH_TOPOLOGY.replace("  client: {interfaces: {lan: 10.77.1.11}}",
                                                       "  client: {interfaces: {lan: 10.77.1.11}, "
                                                       "ssh: {host: 10.77.1.11}}"))  # fmt: skip
    said += refusals(topology)
    program = UserProgram("mine", (Path("main.c"),), ("cc", "main.c"), ("./a.out",))
    said.append(build_failure(program, 1, "main.c:1: error: boom\n"))
    said.append(build_failure(program, 1, "main.c:1: error: boom\n", " on server"))
    return said


def test_the_backends_errors_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    said = backend_errors(monkeypatch)
    assert said[0] == (
        f"Docker engine not reachable at {NOWHERE} — is it running? use --backend netns"
    )
    assert said[1] == "unknown backend 'bogus'; choose one of netns, docker, ssh, swarm"
    assert said[2].startswith("no backend can run here — docker: Docker engine not reachable")
    assert "netns: the netns backend needs root (network namespaces)" in said[2]
    with using("zh"):
        chinese = [
            LOCATED.sub(r"\2", TopologyError([s]).lines()[0]) if ": nodes" in s else read_back(s)
            for s in said
        ]
    left = {en: english_words(zh, NAMES) for en, zh in zip(said, chinese, strict=True)}
    assert {en: w for en, w in left.items() if w or en in chinese} == {}
    assert (
        chinese[0] == f"无法连接 {NOWHERE} 上的 Docker 引擎——它在运行吗？可以改用 --backend netns"
    )
    assert "netns：netns 后端需要 root 权限" in chinese[2]
    assert "ssh 后端不支持 netem" in " ".join(chinese)
    assert chinese[-1].startswith(
        "程序 mine：在 server 上编译失败（退出状态 1）：\nmain.c:1: error"
    )
    assert [read_back(s) for s in said] == said  # English: as it was


def test_lab_run_without_a_docker_engine_in_chinese_and_in_english(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": NOWHERE, "SOCKET_LAB_STATE": str(tmp_path / "state")}
    args = ("run", "lab/data/topologies/default.yaml", "--backend", "docker", "--out",
            str(tmp_path / "out"))  # fmt: skip
    chinese = lab(*args, "--lang", "zh", env=env)
    assert chinese.returncode == 1
    assert (
        chinese.stderr
        == f"lab: 无法连接 {NOWHERE} 上的 Docker 引擎——它在运行吗？可以改用 --backend netns\n"
    )
    english = lab(*args, env=env)
    assert english.stderr == (
        f"lab: Docker engine not reachable at {NOWHERE} — is it running? use --backend netns\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_interrupted_run_is_said_in_chinese() -> None:
    import signal

    from lab.errors import Interrupted

    said = str(Interrupted(signal.SIGTERM))
    with using("zh"):
        assert read_back(said) == "被 SIGTERM 中断；实验室已拆除"
    assert read_back(said) == "interrupted by SIGTERM; the run was torn down"
