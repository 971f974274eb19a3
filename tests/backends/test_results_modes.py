"""Evidence is its owner's alone: after a run no file or folder of the results folder is
group- or world-writable (or sticky), on every backend, and under sudo the folder belongs
to the user who ran sudo; the netns nodes' work folders are not world-writable either."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from lab.run.sealing import seal_results
from tests.labcli import lab

LOOSE = stat.S_IWGRP | stat.S_IWOTH | stat.S_ISVTX | stat.S_ISUID | stat.S_ISGID


def loose_entries(folder: Path) -> list[str]:
    """Every entry under ``folder`` (itself included) that others could change."""
    found = []
    for path in [folder, *folder.rglob("*")]:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & LOOSE:
            found.append(f"{path.relative_to(folder)} {stat.S_IMODE(st.st_mode):04o}")
    return found


def owners(folder: Path) -> set[tuple[int, int]]:
    return {(st.st_uid, st.st_gid) for st in map(os.lstat, [folder, *folder.rglob("*")])}


def _run(backend: str, out: Path, env: dict[str, str] | None = None) -> None:
    done = lab("run", "topologies/default.yaml", "--backend", backend, "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert (out / "server" / "eth0.pcap").is_file()


def test_netns_results_are_not_writable_by_others_and_belong_to_the_sudo_user(
    root: None, tmp_path: Path
) -> None:
    out = tmp_path / "netns"
    os.umask(0o000)  # the run itself must not rely on a careful umask
    try:
        _run("netns", out, env={"SUDO_UID": "65534", "SUDO_GID": "65534"})
    finally:
        os.umask(0o022)
    assert loose_entries(out) == []
    assert owners(out) == {(65534, 65534)}
    # `lab report` writes summary.json and report.html again (anew here): sealed as well.
    (out / "summary.json").unlink()
    (out / "report.html").unlink()
    os.umask(0o000)
    try:
        done = lab("report", str(out))
    finally:
        os.umask(0o022)
    assert done.returncode == 0, done.stderr
    assert loose_entries(out) == []


def test_netns_node_work_folders_are_not_world_writable(root: None) -> None:
    from lab.run.backends.netns.build import make_dirs
    from lab.run.backends.netns.names import BASE_DIR
    from lab.spec.topology import load_topology
    from tests.labcli import ROOT

    topology = load_topology(ROOT / "topologies/default.yaml")
    run_id = "f0f0f0"
    try:
        make_dirs(run_id, topology)
        modes = {
            n.name: stat.S_IMODE(os.lstat(BASE_DIR / run_id / n.name).st_mode)
            for n in topology.nodes
        }
    finally:
        shutil.rmtree(BASE_DIR / run_id, ignore_errors=True)
    assert all(mode & LOOSE == 0 for mode in modes.values()), modes


def test_docker_results_are_not_writable_by_others(docker_engine: None, tmp_path: Path) -> None:
    out = tmp_path / "docker"
    _run("docker", out)
    assert loose_entries(out) == []
    assert owners(out) == {(os.geteuid(), os.getegid())}


def test_sealing_never_follows_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("not evidence")
    outside.chmod(0o666)
    out = tmp_path / "out"
    (out / "node").mkdir(parents=True)
    (out / "node").chmod(0o1777)
    (out / "node" / "eth0.pcap").write_bytes(b"x")
    (out / "node" / "eth0.pcap").chmod(0o666)
    (out / "node" / "link").symlink_to(outside)
    assert seal_results(out) == []
    assert loose_entries(out) == []
    assert stat.S_IMODE(outside.stat().st_mode) == 0o666


@pytest.mark.parametrize("sudo", [{"SUDO_UID": "x", "SUDO_GID": "1"}, {}])
def test_no_usable_sudo_user_leaves_the_owner_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sudo: dict[str, str]
) -> None:
    monkeypatch.delenv("SUDO_UID", raising=False)
    monkeypatch.delenv("SUDO_GID", raising=False)
    for key, value in sudo.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "f").write_text("x")
    seal_results(tmp_path)
    assert owners(tmp_path) == {(os.geteuid(), os.getegid())}
