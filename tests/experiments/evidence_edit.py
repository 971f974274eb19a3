"""Changing a copy of an experiment's evidence, so that a claim can be shown to fail where
its evidence says otherwise: copy a results folder, rewrite a capture frame by frame, judge
one claim of one scenario again."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

import dpkt

from lab.evidence.folder import Evidence
from lab.spec.model import Scenario, Topology
from lab.spec.topology import load_topology
from lab.verdict import claims
from lab.verdict.check import Check
from tests.experiments.conftest import Runs


def copy_results(runs: Runs, name: str, tmp_path: Path) -> Path:
    src = runs[name][0]
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def judge(folder: Path, scenario: str, claim: str) -> Check:
    topo: Topology = load_topology(folder / "topology.yaml", sources=False)
    sc: Scenario = next(s for s in topo.scenarios if s.name == scenario)
    return claims.CLAIMS[claim](topo, Evidence.load(folder), sc)


Frame: TypeAlias = dpkt.ethernet.Ethernet
Edit = Callable[[Frame, list[Frame]], Frame | None]


def rewrite(pcap: Path, edit: Edit) -> int:
    """Rewrite a capture frame by frame; ``edit`` returns the frame to keep (changed or
    not) or None to drop it, and sees the frames kept so far. Returns the number of frames
    dropped or replaced (an edit that changes a frame returns a new one: see refresh)."""
    with pcap.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        frames = [(ts, dpkt.ethernet.Ethernet(buf)) for ts, buf in reader]
        linktype = reader.datalink()
    kept: list[tuple[float, dpkt.ethernet.Ethernet]] = []
    changed = 0
    for ts, eth in frames:
        out = edit(eth, [e for _, e in kept])
        if out is not eth:
            changed += 1
        if out is not None:
            kept.append((ts, out))
    with pcap.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=linktype)
        for ts, eth in kept:
            writer.writepkt(bytes(eth), ts)
    return changed


def tcp_of(eth: dpkt.ethernet.Ethernet) -> Any:
    ip = eth.data
    return ip.data if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP) else None


def udp_of(eth: dpkt.ethernet.Ethernet) -> Any:
    ip = eth.data
    return ip.data if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.udp.UDP) else None


def refresh(eth: dpkt.ethernet.Ethernet) -> dpkt.ethernet.Ethernet:
    """Recompute lengths and checksums after a change."""
    ip = eth.data
    ip.data.sum = 0
    ip.sum = 0
    ip.len = len(ip)
    return dpkt.ethernet.Ethernet(bytes(eth))


def server_pcap(folder: Path) -> Path:
    return folder / "server" / "eth0.pcap"
