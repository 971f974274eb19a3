"""The live commands' bad input, on any machine: one located line, exit 2, nothing made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labcli import lab

DEFAULT = "lab/data/topologies/default.yaml"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("up", DEFAULT, "--backend", "ssh"), "the ssh backend needs an ssh target on every node"),
        (("up", DEFAULT, "--known-hosts", "kh"), "apply to --backend ssh"),
        (("up", DEFAULT, "--name", "Bad Name"), "--name 'Bad Name'"),
        (("exec", "client1", "--", "true"), "no live lab: start one with `lab up FILE`"),
        (("shell", "client1"), "no live lab"),
        (("snapshot",), "no live lab"),
        (("down",), "no live lab"),
        (("exec", "a", "b", "c", "--", "true"), "usage: lab exec"),
    ],
)
def test_refused(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    env = {"SOCKET_LAB_STATE": str(tmp_path / "state")}
    out = tmp_path / "out"
    result = lab(*args, *(("--out", str(out)) if args[0] == "up" else ()), env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert not (tmp_path / "state" / "live").exists() or not any(
        (tmp_path / "state" / "live").iterdir()
    )


def test_lab_chosen_by_name_or_id(tmp_path: Path) -> None:
    """Two state files: a name shared by both needs the run id; a unique one is enough."""
    live = tmp_path / "state" / "live"
    live.mkdir(parents=True)
    for rid, name in (("aaaaaa", "default"), ("bbbbbb", "default")):
        state = {
            "run_id": rid,
            "name": name,
            "topology": "default",
            "backend": "netns",
            "out": str(tmp_path),
            "socket": str(live / f"{rid}.sock"),
            "pid": 999999999,  # no such process: the lab is stale
            "pid_start": None,
            "started": "",
            "nodes": [{"name": "client1", "interfaces": {}, "addresses": {}}],
        }
        (live / f"{rid}.json").write_text(json.dumps(state))
    env = {"SOCKET_LAB_STATE": str(tmp_path / "state")}
    both = lab("exec", "default", "client1", "--", "true", env=env)
    assert both.returncode == 2 and "give the run id (aaaaaa, bbbbbb)" in both.stderr
    stale = lab("exec", "bbbbbb", "client1", "--", "true", env=env)
    assert stale.returncode == 1 and "is stale" in stale.stderr and "lab down" in stale.stderr
