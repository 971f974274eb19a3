"""``lab grade --backend ssh`` against real OpenSSH servers in namespaces (the ssh tier's
hosts): a class of two graded on four machines, the course's C fork server with full
marks and a submission that does not compile; hosts that cannot run the lab refused
before anything starts. What a run leaves on the hosts is looked for from outside."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.grade.submission import grading_topology, read_submission
from lab.spec.model import Topology
from tests.grade.util import STUDENT, grade
from tests.ssh.hosts import World, run_dirs, run_processes, worlds

__all__ = ["worlds"]  # the fixture, used by name

pytestmark = pytest.mark.ssh

Worlds = Callable[..., World]
C = Path(__file__).resolve().parents[2] / "lab" / "programs" / "c"
FORK = [C / "fork_server.c", C / "serve.c", C / "serve.h", C / "wrap.c", C / "wrap.h"]


def machines(worlds: Worlds, tmp_path: Path) -> tuple[World, list[str]]:
    """Four machines laid out as the grading lab's nodes, and the options that reach them:
    ``--hosts FILE`` (written as a user would) and ``--known-hosts``."""
    lab = grading_topology(read_submission(FORK), "fork", 9999)
    world = worlds(Topology("grading-hosts", lab.networks, lab.nodes))
    lines = ["name: grading-hosts", "networks:"]
    lines += [f"  {n.name}: {{subnet: {n.subnet}}}" for n in lab.networks]
    lines.append("nodes:")
    for node in lab.nodes:
        host = world.hosts[node.name]
        lines += [
            f"  {node.name}:",
            f"    interfaces: {{lan: {node.interfaces[0].address}}}",
            f"    ssh: {{host: {host.address}, user: {world.user}, key: {world.client_key}}}",
        ]
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text("\n".join(lines) + "\n")
    known = world.known_hosts(tmp_path / "known_hosts")
    return world, ["--hosts", str(hosts), "--known-hosts", str(known)]


def assert_nothing_left(out: Path) -> None:
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert run_processes(run_id) == []
    assert run_dirs(run_id) == []


@pytest.mark.slow
def test_a_class_is_graded_over_ssh(worlds: Worlds, tmp_path: Path) -> None:
    _, reach = machines(worlds, tmp_path)
    folder = tmp_path / "class"
    for name, files in (("course-c", FORK), ("broken", [STUDENT / "broken.c"])):
        (folder / name).mkdir(parents=True)
        for f in files:
            shutil.copy(f, folder / name / f.name)
    out = tmp_path / "out"
    graded = grade(str(folder), "--as", "fork", *reach, "--out", str(out))
    assert isinstance(graded.doc, list), graded.stderr[-2000:]
    grades = {g["submission"]: g for g in graded.doc}
    good = grades["course-c"]
    failed = [(r["claim"], r["evidence"]) for r in good["rows"] if not r["passed"]]
    assert failed == [], failed
    assert good["backend"] == "ssh"
    print(f"course-c graded over ssh in {good['seconds']} s")
    broken = {r["claim"]: r for r in grades["broken"]["rows"]}
    evidence = broken["builds and listens"]["evidence"]
    assert "build on server failed" in evidence and "broken.c:4:34: error: expected" in evidence
    assert all(not r["judged"] for c, r in broken.items() if c != "builds and listens")
    assert graded.code == 1  # one submission failed
    assert (out / "grades.csv").read_text().count("\n") == 3
    for name in grades:
        assert_nothing_left(out / name)


def test_hosts_that_cannot_run_the_lab_are_refused_first(worlds: Worlds, tmp_path: Path) -> None:
    """A machine that does not answer and a graded port already taken (another lab under
    way there, say): exit 2, each named, before anything is made anywhere."""
    world, reach = machines(worlds, tmp_path)
    world.stop_sshd("c2")
    listen = (
        "import socket, sys; s = socket.socket(); s.bind(('', 9999)); s.listen(); "
        "print('listening', flush=True); sys.stdin.read()"
    )
    argv = ["ip", "netns", "exec", world.hosts["server"].namespace, sys.executable, "-c", listen]
    taken = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert taken.stdout is not None and taken.stdout.readline() == "listening\n"
    try:
        out = tmp_path / "out"
        graded = grade(*map(str, FORK), "--as", "fork", *reach, "--out", str(out))
    finally:
        taken.kill()
        taken.wait()
    assert graded.code == 2, graded.stderr
    assert "2 hosts cannot run the lab; nothing was started" in graded.stderr
    assert "node server" in graded.stderr and "tcp port 9999 is already in use" in graded.stderr
    assert f"node c2 ({world.user}@{world.hosts['c2'].address}:22)" in graded.stderr
    assert not out.exists()
    assert not list((tmp_path / "state").rglob("*.json"))  # no run was recorded
