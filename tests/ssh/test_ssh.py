"""The ssh backend against real OpenSSH servers: host keys, client keys, pre-flight,
`lab run` end to end, a host lost mid-run, and Ctrl-C / SIGTERM. What a run leaves on
the hosts is looked for from outside (/proc and /tmp), not with the backend's code."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from lab.errors import BackendError
from lab.run.backends.base import new_run_id
from lab.run.backends.ssh.backend import SshBackend
from lab.spec.topology import load_topology
from tests.backends.contract_kit import lan
from tests.labcli import ROOT, lab
from tests.ssh.hosts import World, keygen, run_dirs, run_processes

DEFAULT = ROOT / "topologies" / "default.yaml"

pytestmark = pytest.mark.ssh

Worlds = Callable[..., World]

# A small lab for the tests that stop a run part-way: one fork server, one client node.
MINI = """\
name: mini
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  server:
    interfaces: {lan: 10.77.1.10}
  client1:
    interfaces: {lan: 10.77.1.11}
services:
  fork: {node: server, program: fork_server, port: 9999}
scenarios:
  - {name: fork-echo, service: fork, clients: [client1], send: [hi], expect: [HI], hold: 3}
"""


def ssh_topology(world: World, source: Path, dest: Path, **extra: Mapping[str, object]) -> Path:
    """``source`` with an ``ssh:`` line after each node's interfaces, pointing at the
    world's hosts (``extra[node]`` adds keys to that node's line). Connections are held
    6 s instead of 2: every command over SSH starts a login shell on the host, which
    takes a while on a busy machine, and the "during" snapshot must see them open."""
    text = re.sub(r"hold: 2\b", "hold: 6", source.read_text())
    for node, host in world.hosts.items():
        keys: dict[str, object] = {
            "host": host.address,
            "user": world.user,
            "key": str(world.client_key),
            **extra.get(node, {}),
        }
        flow = ", ".join(f"{k}: {json.dumps(v)}" for k, v in keys.items())
        pattern = re.compile(rf"(\n  {node}:\n    interfaces: [^\n]*\n)")
        line = f"    ssh: {{{flow}}}\n"

        def with_ssh(m: re.Match[str], line: str = line) -> str:
            return m.group(1) + line

        text, count = pattern.subn(with_ssh, text)
        assert count == 1, node
    dest.write_text(text)
    return dest


def fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True)
    return out.stdout.split()[1]


def assert_nothing_left(run_id: str) -> None:
    assert run_processes(run_id) == []
    assert run_dirs(run_id) == []


def up_fails(cls: type[SshBackend], world: World) -> tuple[str, str]:
    backend = cls(new_run_id())
    try:
        with pytest.raises(BackendError) as info:
            backend.up(world.attach(lan("srv")))
    finally:
        backend.down()
    assert_nothing_left(backend.run_id)
    return str(info.value), backend.run_id


# -- host keys and client keys ---------------------------------------------------------------


def test_unknown_host_key_is_refused_and_accept_new_records_it(
    worlds: Worlds, tmp_path: Path
) -> None:
    world = worlds(lan("srv"), user="root")  # one of the tests that keep root covered
    known = tmp_path / "kh"
    message, _ = up_fails(SshBackend.configured(known_hosts=known), world)
    host = world.hosts["srv"]
    assert "unknown" in message and host.address in message
    assert fingerprint(host.dir / "host_key.pub") in message
    assert "--accept-new-host-keys" in message
    assert not known.exists()

    backend = SshBackend.configured(known_hosts=known, accept_new=True)(new_run_id())
    try:
        backend.up(world.attach(lan("srv")))
        assert backend.run("srv", ["true"]).ok
    finally:
        backend.down()
    assert known.read_text() == host.known_hosts_line()
    # Now known: accepted without the option.
    backend = SshBackend.configured(known_hosts=known)(new_run_id())
    try:
        backend.up(world.attach(lan("srv")))
    finally:
        backend.down()


def test_changed_host_key_is_refused_even_with_accept_new(worlds: Worlds, tmp_path: Path) -> None:
    world = worlds(lan("srv"))
    known = world.known_hosts(tmp_path / "kh")
    world.new_host_key("srv")
    before = known.read_text()
    message, _ = up_fails(SshBackend.configured(known_hosts=known, accept_new=True), world)
    assert "CHANGED" in message
    assert fingerprint(world.hosts["srv"].dir / "host_key.pub") in message
    assert "ssh-keygen -R" in message
    assert known.read_text() == before


def test_wrong_client_key_is_refused(worlds: Worlds, tmp_path: Path) -> None:
    world = worlds(lan("srv"))
    known = world.known_hosts(tmp_path / "kh")
    other = keygen(tmp_path / "other_key")
    backend = SshBackend.configured(known_hosts=known)(new_run_id())
    try:
        with pytest.raises(BackendError, match=f"authentication as '{world.user}' failed") as info:
            backend.up(world.attach(lan("srv"), key=str(other)))
    finally:
        backend.down()
    assert "authorized_keys" in str(info.value)
    assert_nothing_left(backend.run_id)


def test_a_key_file_readable_by_others_is_refused(worlds: Worlds, tmp_path: Path) -> None:
    world = worlds(lan("srv"))
    known = world.known_hosts(tmp_path / "kh")
    os.chmod(world.client_key, 0o644)
    message, _ = up_fails(SshBackend.configured(known_hosts=known), world)
    assert f"chmod 600 {world.client_key}" in message
    assert "0644" in message


# -- pre-flight ------------------------------------------------------------------------------


def test_preflight_reports_every_hosts_problem_at_once(worlds: Worlds, tmp_path: Path) -> None:
    world = worlds(load_topology(DEFAULT))
    # An interpreter that says it is 3.8, whatever it is asked.
    old = tmp_path / "python3.8"
    fake = "import sys; sys.version_info = (3, 8, 0, 'final', 0); exec(sys.argv[1])"
    old.write_text(f'#!/bin/sh\nshift\nexec {sys.executable} -c "{fake}" "$@"\n')
    old.chmod(0o755)
    topo = ssh_topology(
        world,
        DEFAULT,
        tmp_path / "t.yaml",
        client1={"python": str(old)},
        client2={"python": "/nonexistent/python3"},
    )
    known = world.known_hosts(tmp_path / "kh")
    out = tmp_path / "out"
    proc = lab("run", str(topo), "--backend", "ssh", "--known-hosts", str(known), "--out", str(out))
    assert proc.returncode != 0
    assert "2 hosts cannot run the lab; nothing was started" in proc.stderr
    assert re.search(r"node client1 .*python3\.8 is Python 3\.8; the lab needs 3\.11", proc.stderr)
    assert re.search(r"node client2 .*no Python at '/nonexistent/python3'", proc.stderr)
    assert "node server" not in proc.stderr
    assert_nothing_left(json.loads((out / "run.json").read_text())["run_id"])


# -- lab run ---------------------------------------------------------------------------------


def test_lab_run_default_topology_over_ssh(worlds: Worlds, tmp_path: Path) -> None:
    # As root: its login shell here is the slow one (pyenv in ~/.bashrc), which the other
    # tests avoid (see tests/ssh/hosts.py); this one keeps the root path covered end to end.
    world = worlds(load_topology(DEFAULT), user="root")
    topo = ssh_topology(world, DEFAULT, tmp_path / "default.yaml")
    known = world.known_hosts(tmp_path / "kh")
    out = tmp_path / "out"
    proc = lab(
        "run", str(topo), "--backend", "ssh", "--known-hosts", str(known), "--out", str(out),
        "--json",
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    failed = [(s["name"], c) for s in summary["scenarios"] for c in s["checks"] if not c["passed"]]
    assert proc.returncode == 0, (failed, proc.stderr[-3000:])
    assert summary["passed"] is True
    assert summary["backend"] == "ssh"
    for node, host in world.hosts.items():
        assert summary["nodes"][node]["host"] == f"root@{host.address}:22"
        assert summary["nodes"][node]["interfaces"] == {"lan": "eth0"}
        assert list((out / node).glob("eth0.pcap"))
        assert (out / node / "snapshots" / "during.ps.txt").is_file()
    assert (out / "report.html").is_file()
    assert_nothing_left(summary["run_id"])


def start_lab_run(topo: Path, known: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "run", str(topo), "--backend", "ssh",
         "--known-hosts", str(known), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip


def read_until(proc: subprocess.Popen[str], when: str) -> list[str]:
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if when in line:
            return seen
    raise AssertionError("never saw " + when + ": " + "".join(seen))


def in_namespace(pid: int, namespace: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{namespace}").st_ino
    except OSError:
        return False


def mini(world_maker: Worlds, tmp_path: Path) -> tuple[World, Path]:
    source = tmp_path / "mini-source.yaml"
    source.write_text(MINI)
    world = world_maker(load_topology(source))
    return world, ssh_topology(world, source, tmp_path / "mini.yaml")


def test_host_lost_mid_run_then_lab_clean(worlds: Worlds, tmp_path: Path) -> None:
    world, topo = mini(worlds, tmp_path)
    known = world.known_hosts(tmp_path / "kh")
    out = tmp_path / "out"
    proc = start_lab_run(topo, known, out)
    seen = read_until(proc, "scenarios")
    world.cut("server")
    try:
        _, rest = proc.communicate(timeout=120)
    finally:
        world.restore("server")
    assert proc.returncode != 0, "".join(seen) + rest
    server = world.hosts["server"]
    assert f"{world.user}@{server.address}:22 is unreachable" in rest
    run = json.loads((out / "run.json").read_text())
    run_id = run["run_id"]
    assert any(
        f"run `lab clean --run-id {run_id}`" in e and "node server" in e
        for e in run["teardown_errors"]
    ), run["teardown_errors"]
    # ... and said where it is read: on stderr.
    assert re.search(rf"lab: teardown: .*node server.*lab clean --run-id {run_id}", rest), rest
    # The lost host's files could not be collected; the others' were, all of them.
    assert [e["node"] for e in run["node_errors"] if e["step"] == "collect"] == ["server"]
    assert (out / "client1" / "eth0.pcap").stat().st_size > 0
    assert (out / "client1" / "snapshots" / "before.ss.txt").is_file()
    # `lab ls` shows the run's leftovers with the hosts they are on.
    listed = {r["run_id"]: r for r in json.loads(lab("ls", "--json").stdout)}
    assert f"server={world.user}@{server.address}:22" in listed[run_id]["objects"]
    # The clients' hosts are clean; the lost server still has its processes and dir.
    left = run_processes(run_id)
    assert left
    assert all(in_namespace(pid, server.namespace) for pid in left)
    assert [Path(d).name.split(".")[0] for d in run_dirs(run_id)] == [
        f"socket-lab-ssh-{run_id}-server"
    ]
    services = [int(s["pid"]) for s in run["services"].values()]
    assert services and all(pid in left for pid in services)
    # Back on the network: `lab clean` (a new process) stops them by verified PID.
    cleaned = lab("clean", "--run-id", run_id, "--json")
    assert cleaned.returncode == 0, cleaned.stderr
    removed = json.loads(cleaned.stdout)["removed"]
    assert any(f"process {services[0]}" in item for item in removed)
    assert any("directory /tmp/socket-lab-ssh-" in item for item in removed)
    assert_nothing_left(run_id)
    assert lab("ls", "--json").stdout.count(run_id) == 0


@pytest.mark.parametrize(
    ("when", "signum", "code"),
    [("scenarios", signal.SIGINT, 130), ("snapshot: during", signal.SIGTERM, 1)],
)
def test_interrupted_run_leaves_nothing_on_the_hosts(
    worlds: Worlds, tmp_path: Path, when: str, signum: int, code: int
) -> None:
    world, topo = mini(worlds, tmp_path)
    known = world.known_hosts(tmp_path / "kh")
    out = tmp_path / "out"
    proc = start_lab_run(topo, known, out)
    seen = read_until(proc, when)
    proc.send_signal(signum)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == code, "".join(seen) + rest
    assert "interrupted by" in rest
    assert_nothing_left(json.loads((out / "run.json").read_text())["run_id"])
