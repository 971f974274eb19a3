"""``lab grade --backend ssh``'s input, refused before anything is made: the hosts file
(``--hosts``, a topology file as ``lab run --backend ssh`` takes) must give the grading
lab's four nodes an ssh target each; the grading lab is then laid on those machines.
No host is needed: every case here ends before a connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import TopologyError, UsageError
from lab.grade.classroom import class_preflight
from lab.grade.hosts import on_hosts, read_hosts
from lab.grade.submission import grading_topology, read_submission
from lab.run.backends.fake import FakeBackend
from lab.spec.model import Topology
from tests.grade.util import STUDENT
from tests.labcli import lab

NODES = {"server": 10, "c1": 11, "c2": 12, "c3": 13}
SERVER = [str(STUDENT / f) for f in ("server.c", "wrap.c", "wrap.h")]


def hosts_file(tmp_path: Path, *, without: str = "", ssh: bool = True) -> Path:
    """Four machines on 10.77.50.0/24, reached as root with a key beside the file."""
    lines = ["name: classroom", "networks:", "  lan: {subnet: 10.77.50.0/24}", "nodes:"]
    for node, last in NODES.items():
        if node == without:
            continue
        lines += [f"  {node}:", f"    interfaces: {{lan: 10.77.50.{last}}}"]
        if ssh:
            lines.append(f"    ssh: {{host: pc{last}.lab.example, key: keys/lab_ed25519}}")
    path = tmp_path / "hosts.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_missing_target_is_named(tmp_path: Path) -> None:
    out = tmp_path / "out"
    hosts = hosts_file(tmp_path, without="c2")
    done = lab("grade", *SERVER, "--as", "fork", "--hosts", str(hosts), "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert f"{hosts}: nodes: no node 'c2': grading over ssh needs nodes server" in done.stderr
    # A lab's own topology, its nodes named as the grading lab's but no machine given:
    hosts = hosts_file(tmp_path, ssh=False)
    done = lab("grade", *SERVER, "--as", "fork", "--hosts", str(hosts), "--out", str(out))
    assert done.returncode == 2, done.stderr
    for node in NODES:
        assert f"{hosts}: nodes.{node}: no `ssh:` target: grading over ssh" in done.stderr
    assert "lab: 4 problems; nothing was created" in done.stderr
    assert not out.exists()


def test_the_ssh_options_go_together(tmp_path: Path) -> None:
    hosts = hosts_file(tmp_path)
    alone = lab("grade", *SERVER, "--as", "fork", "--backend", "ssh")
    assert alone.returncode == 2
    assert "--backend ssh needs --hosts FILE" in alone.stderr
    other = lab("grade", *SERVER, "--as", "fork", "--backend", "netns", "--hosts", str(hosts))
    assert other.returncode == 2
    assert "--hosts applies to --backend ssh, not netns" in other.stderr


def test_a_class_over_ssh_is_graded_one_submission_at_a_time(tmp_path: Path) -> None:
    hosts = hosts_file(tmp_path)
    for name in ("alice", "bob"):
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "server.py").write_text("print('hi')\n")
    out = tmp_path / "out"
    done = lab(
        "grade", str(tmp_path / "class"), "--as", "fork", "--hosts", str(hosts), "--jobs", "2",
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 2
    assert "--jobs 2: over ssh the submissions are graded one at a time" in done.stderr
    assert not out.exists()


def test_netem_in_the_hosts_file_is_refused(tmp_path: Path) -> None:
    hosts = hosts_file(tmp_path)
    hosts.write_text(hosts.read_text().replace("{subnet: 10.77.50.0/24}", NETEM_LAN))
    with pytest.raises(TopologyError) as info:
        read_hosts(hosts)
    assert info.value.problems == [
        f"{hosts}: netem on c1, c2, c3, server: grading impairs no link (the ssh backend "
        "would not either): remove `netem`"
    ]


NETEM_LAN = "{subnet: 10.77.50.0/24, netem: {delay: 10ms}}"


def test_the_grading_lab_is_laid_on_the_machines(tmp_path: Path) -> None:
    extra = "  spare:\n    interfaces: {wifi: 10.77.60.5}\n    ssh: {host: spare.lab.example}\n"
    hosts = hosts_file(tmp_path)
    text = hosts.read_text().replace("nodes:\n", "  wifi: {subnet: 10.77.60.0/24}\nnodes:\n")
    hosts.write_text(text + extra)
    sub = read_submission([Path(p) for p in SERVER])
    topology = on_hosts(grading_topology(sub, "fork", 9999), read_hosts(hosts))
    assert [n.name for n in topology.nodes] == ["server", "c1", "c2", "c3"]
    assert [n.name for n in topology.networks] == ["lan"]  # the spare's wifi is not used
    server = topology.node("server")
    assert str(server.interfaces[0].address) == "10.77.50.10"
    assert server.ssh is not None and server.ssh.host == "pc10.lab.example"
    assert server.ssh.key == str(tmp_path.resolve() / "keys" / "lab_ed25519")
    assert topology.capture.filter == "tcp port 9999"
    assert [s.name for s in topology.scenarios] == ["one", "fifty", "five-hundred"]
    udp = on_hosts(grading_topology(sub, "udp", 8080), read_hosts(hosts))
    assert udp.capture.filter == "udp port 8080"


def test_a_class_is_checked_once_per_language(tmp_path: Path) -> None:
    """Each way of building the class's submissions is asked of the hosts once (a
    compiler missing is the machines' fault, said before any student is graded); the
    first problem ends it, exit 2."""
    seen: list[tuple[str, ...]] = []

    class Hosts(FakeBackend):
        @classmethod
        def host_problems(cls, topology: Topology) -> list[str]:
            seen.append(topology.programs[0].build[:1] or topology.programs[0].run[:1])
            if seen[-1] == ("c++",):
                return ["node server (root@pc10:22): missing c++: apt-get install g++"]
            return []

    folder = tmp_path / "class"
    for name, source in (("ann", "a.c"), ("bob", "b.c"), ("cy", "c.py"), ("di", "d.cpp")):
        (folder / name).mkdir(parents=True)
        (folder / name / source).write_text("\n")
    (folder / "empty").mkdir()  # no submission: left to its own row
    hosts = read_hosts(hosts_file(tmp_path))
    with pytest.raises(UsageError) as info:
        class_preflight(folder, "fork", 9999, hosts, Hosts)
    assert seen == [("cc",), ("python3",), ("c++",)]  # in the folders' order
    assert str(info.value) == f"{hosts.source}: node server (root@pc10:22): missing c++: " + (
        "apt-get install g++"
    )
    seen.clear()
    (folder / "di" / "d.cpp").unlink()
    (folder / "di" / "d.c").write_text("\n")
    class_preflight(folder, "fork", 9999, hosts, Hosts)
    assert seen == [("cc",), ("python3",)]
