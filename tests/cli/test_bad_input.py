"""Bad input to `lab run`/`lab experiment`/`lab validate` is refused with exit 2 before
anything is created, and a results folder never overwrites evidence already there."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.labcli import ROOT, lab


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by path, with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.broken_results  # a stand-in for an earlier run's folder
def test_out_that_is_a_folder_with_files_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "earlier"
    (out / "server").mkdir(parents=True)
    (out / "run.json").write_text('{"earlier": true}')
    (out / "server" / "eth0.pcap").write_bytes(b"\xd4\xc3\xb2\xa1 earlier")
    (out / "notes.txt").write_text("my own notes")
    before = tree_digest(out)
    proc = lab("run", "topologies/default.yaml", "--backend", "netns", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "not empty" in proc.stderr and "--out" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert tree_digest(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "run.json", "server"]


def test_experiment_out_with_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    proc = lab("experiment", "handshake", "--backend", "netns", "--out", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert "not empty" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("mine")
    proc = lab("run", "topologies/default.yaml", "--backend", "netns", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "not a folder" in proc.stderr
    assert out.read_text() == "mine"


def test_empty_out_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*lab_argv(), "run", str(ROOT / "topologies/default.yaml"), "--out", ""],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--out" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def lab_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "lab.cli"]


@pytest.mark.broken_results  # a stand-in for an earlier run's folder
def test_default_results_folder_never_reuses_an_existing_one(tmp_path: Path) -> None:
    from lab.run.outdir import claim_results_folder
    from lab.spec.topology import load_topology

    topology = load_topology(ROOT / "topologies/default.yaml")
    os.chdir(tmp_path)
    try:
        first = claim_results_folder(topology, None)
        (first / "run.json").write_text("{}")
        second = claim_results_folder(topology, None)
        third = claim_results_folder(topology, None)
    finally:
        os.chdir(ROOT)
    assert len({first, second, third}) == 3
    assert second.name.startswith(first.name) and re.search(r"-\d+$", second.name)
    assert (tmp_path / first / "run.json").read_text() == "{}"
    assert list((tmp_path / second).iterdir()) == []


@pytest.mark.broken_results  # a stand-in run.json
def test_an_empty_out_folder_is_used_and_a_new_one_claimed_once(tmp_path: Path) -> None:
    from lab.errors import UsageError
    from lab.run.outdir import claim_results_folder
    from lab.spec.topology import load_topology

    topology = load_topology(ROOT / "topologies/default.yaml")
    assert claim_results_folder(topology, str(tmp_path)) == tmp_path
    new = tmp_path / "a" / "b"
    assert claim_results_folder(topology, str(new), create=False) == new
    assert not new.exists()
    assert claim_results_folder(topology, str(new)) == new and new.is_dir()
    (new / "run.json").write_text("{}")
    with pytest.raises(UsageError, match="not empty"):
        claim_results_folder(topology, str(new))


def test_ssh_backend_for_a_topology_without_ssh_targets_is_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "o"
    proc = lab("run", "topologies/default.yaml", "--backend", "ssh", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "ssh" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_ssh_backend_default_out_writes_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*lab_argv(), "run", str(ROOT / "topologies/default.yaml"), "--backend", "ssh"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2, proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("what", ["/dev/zero", "fifo"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_validate_and_run_refuse_what_is_not_a_file(
    tmp_path: Path, what: str, command: str
) -> None:
    path = what
    if what == "fifo":
        path = str(tmp_path / "t.yaml")
        os.mkfifo(path)
    out = tmp_path / "o"
    args = (command, path) if command == "validate" else (command, path, "--out", str(out))
    proc = lab(*args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"{path}:1: (document): "), proc.stderr
    assert not out.exists()


def test_validate_reads_a_process_substitution_but_no_more_than_the_limit() -> None:
    ok = subprocess.run(
        ["bash", "-c", f'"$@" validate <(cat {ROOT}/topologies/default.yaml)', "-", *lab_argv()],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    endless = subprocess.run(
        ["bash", "-c", "\"$@\" validate <(yes 'x: y')", "-", *lab_argv()],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert endless.returncode == 2, endless.stderr
    assert "larger than 1048576 bytes" in endless.stderr


def test_run_of_a_process_substitution_keeps_the_text_it_ran(root: None, tmp_path: Path) -> None:
    out = tmp_path / "piped"
    source = ROOT / "topologies/default.yaml"
    done = subprocess.run(
        ["bash", "-c", f'"$@" run <(cat {source}) --backend netns --out {out}', "-", *lab_argv()],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "topology.yaml").read_text() == source.read_text()


def test_netns_run_of_a_topology_too_wide_to_name_writes_nothing(
    root: None, tmp_path: Path
) -> None:
    from tests.backends.test_topology_fit import _wide

    topo = tmp_path / "wide.yaml"
    topo.write_text(_wide(41, 250))
    out = tmp_path / "o"
    proc = lab("run", str(topo), "--backend", "netns", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "exceeds 15 characters" in proc.stderr and "nothing was created" in proc.stderr
    assert not out.exists()
