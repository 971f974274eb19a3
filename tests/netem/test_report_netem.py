"""The report's topology section names every impaired link and what netem does there."""

from __future__ import annotations

from pathlib import Path

from lab.report.page import _netem
from lab.spec.topology import load_topology

EXPERIMENTS = Path(__file__).resolve().parents[2] / "topologies" / "experiments"


def test_impaired_links_are_listed() -> None:
    html = _netem(load_topology(EXPERIMENTS / "reorder.yaml"))
    assert "what <b>server</b> receives from lan: delay 20ms reorder 25%" in html
    assert _netem(load_topology(EXPERIMENTS / "handshake.yaml")) == ""
