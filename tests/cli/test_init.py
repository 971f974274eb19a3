"""`lab --version` and `lab init DIR`: the shipped topologies copied out for a user to edit."""

from __future__ import annotations

from pathlib import Path

import lab as lab_package
from tests.labcli import ROOT, lab


def test_version_is_the_package_version() -> None:
    proc = lab("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["socket-lab", lab_package.__version__]


def test_init_copies_every_shipped_topology(tmp_path: Path) -> None:
    dest = tmp_path / "mine"
    proc = lab("init", str(dest))
    assert proc.returncode == 0, proc.stderr
    shipped = ROOT / "topologies"
    expected = {p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file()}
    copied = {p.relative_to(dest) for p in dest.rglob("*") if p.is_file()}
    assert copied == expected
    experiments = [p for p in copied if p.parts[0] == "experiments"]
    # 10, 4 impaired, 4 bug-*, anatomy, bind-address, byte-order, ephemeral-port, demux, mss,
    # read-returns, time-wait
    assert len([p for p in experiments if len(p.parts) == 2]) == 26
    assert len([p for p in experiments if p.parts[1] == "c"]) == 9  # the --impl c files
    assert [p for p in experiments if p.parts[1] == "programs"] == [
        Path("experiments/programs/one_line_server.py")
    ]
    for rel in expected:
        assert (dest / rel).read_bytes() == (shipped / rel).read_bytes(), rel


def test_init_copies_are_valid_topologies(tmp_path: Path) -> None:
    lab("init", str(tmp_path / "mine"))
    proc = lab("validate", str(tmp_path / "mine" / "experiments" / "handshake.yaml"))
    assert proc.returncode == 0, proc.stderr
    # The C programs are the lab's own (lab:PATH), found from the copy; the one-line
    # server of bug-client-read is copied beside its experiment.
    for rel in ("c.yaml", "experiments/c/fork.yaml", "experiments/bug-client-read.yaml"):
        proc = lab("validate", str(tmp_path / "mine" / rel))
        assert proc.returncode == 0, proc.stderr


def test_init_into_an_empty_folder(tmp_path: Path) -> None:
    proc = lab("init", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "default.yaml").is_file()


def test_init_refuses_a_non_empty_folder_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text("mine\n")
    proc = lab("init", str(tmp_path))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "not an empty folder" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.yaml"]
    assert (tmp_path / "default.yaml").read_text() == "mine\n"


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    proc = lab("init", str(tmp_path / "f"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
