"""The demux and mss experiments' claims each fail on evidence that contradicts them: a
copy of the session's netns run with its capture or its socket snapshot changed."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import dpkt
import pytest

from lab.evidence.folder import Evidence
from lab.report.claim_pictures import claim_pictures
from lab.spec.topology import load_topology
from tests.experiments.conftest import Runs
from tests.experiments.evidence_edit import (
    copy_results,
    judge,
    refresh,
    rewrite,
    server_pcap,
    tcp_of,
)


def _set_syn_mss(syn_ack: bool, mss: int) -> Any:
    """An edit that announces ``mss`` in the client's SYN (or the server's SYN-ACK)."""

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = tcp_of(eth)
        if tcp is None or not tcp.flags & dpkt.tcp.TH_SYN:
            return eth
        if bool(tcp.flags & dpkt.tcp.TH_ACK) != syn_ack or bytes(tcp.opts[:2]) != b"\x02\x04":
            return eth
        tcp.opts = b"\x02\x04" + struct.pack("!H", mss) + bytes(tcp.opts[4:])
        return refresh(eth)

    return edit


@pytest.mark.netns
def test_mss_follows_mtu_fails_on_a_syn_announcing_1460(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "mss", tmp_path)
    assert judge(folder, "small-mtu", "mss-follows-mtu").passed
    assert rewrite(server_pcap(folder), _set_syn_mss(False, 1460)) >= 1
    check = judge(folder, "small-mtu", "mss-follows-mtu")
    assert not check.passed and "SYN MSS 1460, expected 536" in check.detail


@pytest.mark.netns
def test_segments_within_mss_fails_when_segments_exceed_the_announced_mss(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "mss", tmp_path)
    assert judge(folder, "small-mtu", "segments-within-mss").passed
    # The server now seems to announce 400: the client's 524-byte segments exceed it.
    assert rewrite(server_pcap(folder), _set_syn_mss(True, 400)) >= 1
    check = judge(folder, "small-mtu", "segments-within-mss")
    assert not check.passed and "more than MSS 400" in check.detail


def _edit_snapshot(folder: Path, pattern: str, repl: str) -> None:
    snap = folder / "server" / "snapshots" / "during.ss.txt"
    text, count = re.subn(pattern, repl, snap.read_text(), count=1, flags=re.MULTILINE)
    assert count == 1
    snap.write_text(text)


def _server_pid(folder: Path) -> str:
    text = (folder / "server" / "snapshots" / "during.ss.txt").read_text()
    found = re.search(r"^LISTEN .*pid=(\d+)", text, flags=re.MULTILINE)
    assert found is not None
    return found.group(1)


@pytest.mark.netns
def test_connection_per_child_fails_when_the_parent_holds_a_connection(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "demux", tmp_path)
    assert judge(folder, "four-clients", "connection-per-child").passed
    parent = _server_pid(folder)
    _edit_snapshot(folder, r"^(ESTAB .*pid=)\d+", rf"\g<1>{parent}")
    check = judge(folder, "four-clients", "connection-per-child")
    assert not check.passed and f"held by pid {parent}, not a live child" in check.detail


@pytest.mark.netns
def test_connection_per_child_fails_when_a_connection_carries_another_echo(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "demux", tmp_path)

    changed: list[int] = []

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        # One reply of one connection, lower-cased: not its own client's echo any more.
        tcp = tcp_of(eth)
        if tcp is None or changed or tcp.sport != 9999 or b"ONE PORT" not in bytes(tcp.data):
            return eth
        changed.append(tcp.dport)
        tcp.data = bytes(tcp.data).replace(b"ONE PORT", b"one port")
        return refresh(eth)

    assert rewrite(server_pcap(folder), edit) == 1
    check = judge(folder, "four-clients", "connection-per-child")
    assert not check.passed and "not its client's" in check.detail


@pytest.mark.netns
def test_listener_with_parent_fails_when_a_child_keeps_the_listener(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "demux", tmp_path)
    assert judge(folder, "four-clients", "listener-with-parent").passed
    text = (folder / "server" / "snapshots" / "during.ss.txt").read_text()
    child = re.search(r"^ESTAB .*pid=(\d+)", text, flags=re.MULTILINE)
    assert child is not None
    _edit_snapshot(
        folder, r"^(LISTEN .*users:\(\(.*?\))\)", rf'\g<1>,("python3",pid={child.group(1)},fd=3))'
    )
    check = judge(folder, "four-clients", "listener-with-parent")
    assert not check.passed and "hold it too" in check.detail


@pytest.mark.netns
@pytest.mark.parametrize(
    ("name", "scenario", "mark"),
    [
        ("mss", "small-mtu", 'class="seg-client"'),
        ("demux", "four-clients", "class=child"),
        ("read-returns", "read-returns", 'class="read-bad"'),
    ],
)
def test_claim_pictures_are_drawn(
    root: None, experiment_runs: Runs, name: str, scenario: str, mark: str
) -> None:
    folder = experiment_runs[name][0]
    topo = load_topology(folder / "topology.yaml", sources=False)
    sc = next(s for s in topo.scenarios if s.name == scenario)
    html = claim_pictures(Evidence.load(folder), topo, sc)
    assert html.count("<figure class=claim-picture>") == 1 and mark in html
