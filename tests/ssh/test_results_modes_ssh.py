"""Evidence fetched over SSH is its owner's alone, as on the other backends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.backends.test_results_modes import loose_entries, owners
from tests.labcli import lab
from tests.ssh.test_ssh import Worlds, mini

pytestmark = pytest.mark.ssh


def test_ssh_results_are_not_writable_by_others(worlds: Worlds, tmp_path: Path) -> None:
    world, topo = mini(worlds, tmp_path)
    known = world.known_hosts(tmp_path / "kh")
    out = tmp_path / "out"
    done = lab(
        "run", str(topo), "--backend", "ssh", "--known-hosts", str(known), "--out", str(out)
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "server" / "eth0.pcap").is_file()
    assert loose_entries(out) == []
    assert owners(out) == {(os.geteuid(), os.getegid())}
