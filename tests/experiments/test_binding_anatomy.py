"""The anatomy, byte-order, bind-address and ephemeral-port experiments' claims, each
failing on evidence that contradicts it (a copied results folder with a frame, a snapshot
or the topology changed), and their pictures in the report."""

from __future__ import annotations

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

_LITTLE_9999 = 0x0F27  # 9999's two bytes the other way round: 3879


def _client_data(eth: dpkt.ethernet.Ethernet) -> Any:
    """The TCP segment of a client frame carrying data, else None."""
    tcp = tcp_of(eth)
    return tcp if tcp is not None and tcp.dport == 9999 and tcp.data else None


@pytest.mark.netns
def test_frame_anatomy_fails_when_the_payload_is_not_what_the_client_sent(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "anatomy", tmp_path)
    assert judge(folder, "one-segment", "frame-anatomy").passed

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = _client_data(eth)
        if tcp is None:
            return eth
        tcp.data = tcp.data.replace(b"hello", b"howdy")
        return refresh(eth)  # checksums made whole again: only the bytes are wrong

    assert rewrite(server_pcap(folder), edit) >= 1
    check = judge(folder, "one-segment", "frame-anatomy")
    assert not check.passed and "payload b'howdy\\n' is not what the client sends" in check.detail
    assert "checksum valid" in check.detail  # the recomputed checksum is a whole one


@pytest.mark.netns
def test_frame_anatomy_fails_on_a_bad_ip_checksum_and_foreign_macs(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "anatomy", tmp_path)

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        if _client_data(eth) is None:
            return eth
        eth.data.ttl -= 1  # the header checksum is left as it was
        eth.dst = b"\x02\x00\x00\x00\x00\x99"
        return dpkt.ethernet.Ethernet(bytes(eth))

    assert rewrite(server_pcap(folder), edit) >= 1
    check = judge(folder, "one-segment", "frame-anatomy")
    assert not check.passed
    assert "IPv4 header checksum does not add up" in check.detail
    assert "->02:00:00:00:00:99, but the server's reply went" in check.detail


@pytest.mark.netns
def test_byte_order_fails_when_the_port_is_written_little_endian(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "byte-order", tmp_path)
    check = judge(folder, "on-the-wire", "byte-order")
    assert check.passed and "on the wire 27 0f" in check.detail, check.detail

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = tcp_of(eth)
        if tcp is None:
            return eth
        if tcp.dport == 9999:
            tcp.dport = _LITTLE_9999  # what a missing htons(9999) puts on the wire
        elif tcp.sport == 9999:
            tcp.sport = _LITTLE_9999
        else:
            return eth
        return refresh(eth)

    assert rewrite(server_pcap(folder), edit) >= 1
    check = judge(folder, "on-the-wire", "byte-order")
    assert not check.passed
    assert "port bytes 0f 27 read in network order are 3879, not 9999" in check.detail
    assert "htons missing" in check.detail


def _swap_answers(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
    """The bound server's answers to SYNs the other way round: its SYN-ACKs become RSTs and
    its RSTs SYN-ACKs."""
    tcp = tcp_of(eth)
    syn_ack, rst_ack = dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK
    if tcp is None or tcp.sport != 9102 or tcp.flags not in (syn_ack, rst_ack):
        return eth
    tcp.flags = rst_ack if tcp.flags == syn_ack else syn_ack
    return refresh(eth)


@pytest.mark.netns
def test_bind_address_fails_when_the_answers_contradict_the_bind(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "bind-address", tmp_path)
    for scenario in ("both-addresses", "bound-address", "other-address"):
        assert judge(folder, scenario, "bind-address").passed, scenario
    pcaps = sorted((folder / "server").glob("eth*.pcap"))  # one per network
    assert sum(rewrite(p, _swap_answers) for p in pcaps) == 2
    check = judge(folder, "bound-address", "bind-address")
    assert not check.passed
    assert "SYN to 10.77.133.10 answered by RST, expected SYN-ACK" in check.detail
    check = judge(folder, "other-address", "bind-address")
    assert not check.passed
    assert "SYN to 10.77.134.10 answered by SYN-ACK, expected RST" in check.detail


@pytest.mark.netns
def test_bind_address_fails_when_the_snapshot_shows_a_wildcard_listener(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "bind-address", tmp_path)
    for kind in ("ss", "netstat"):
        snap = folder / "server" / "snapshots" / f"after.{kind}.txt"
        snap.write_text(snap.read_text().replace("10.77.133.10:9102", "0.0.0.0:9102"))
    check = judge(folder, "bound-address", "bind-address")
    assert not check.passed and "listening on 0.0.0.0:9102" in check.detail


@pytest.mark.netns
def test_ephemeral_ports_fail_outside_the_range_and_without_the_snapshot(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "ephemeral-port", tmp_path)
    check = judge(folder, "unbound", "ephemeral-ports")
    assert check.passed and "range 32768-60999" in check.detail, check.detail
    span = folder / "client" / "snapshots" / "before.portrange.txt"
    span.write_text("1024\t2047\n")
    check = judge(folder, "unbound", "ephemeral-ports")
    assert not check.passed and "outside its range 1024-2047" in check.detail
    span.unlink()
    check = judge(folder, "unbound", "ephemeral-ports")
    assert not check.passed and "no ephemeral range read on client" in check.detail


@pytest.mark.netns
def test_ephemeral_ports_fail_when_ss_does_not_show_the_ports(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "ephemeral-port", tmp_path)
    for kind in ("ss", "netstat"):
        snap = folder / "client" / "snapshots" / f"during.{kind}.txt"
        snap.write_text(
            "\n".join(line for line in snap.read_text().splitlines() if "9999" not in line)
        )
    check = judge(folder, "unbound", "ephemeral-ports")
    assert not check.passed and "not in its 'during' snapshot" in check.detail


@pytest.mark.netns
@pytest.mark.parametrize(
    ("name", "scenario", "marks"),
    [
        ("anatomy", "one-segment", ['class="hexview"', "f-key", "OSI 4 transport", "27 0f"]),
        ("byte-order", "on-the-wire", ["class=byteorder", "<td>3879</td>", "0a 4d 84 0a"]),
        ("bind-address", "other-address", ["class=binding", "RST x1", "10.77.134.10:9102"]),
        ("ephemeral-port", "unbound", ["eph-range", 'class="eph-port"', "32768-60999"]),
    ],
)
def test_pictures_of_the_claims_are_in_the_report(
    root: None, experiment_runs: Runs, name: str, scenario: str, marks: list[str]
) -> None:
    folder = experiment_runs[name][0]
    page = (folder / "report.html").read_text()
    topo = load_topology(folder / "topology.yaml", sources=False)
    sc = next(s for s in topo.scenarios if s.name == scenario)
    drawn = claim_pictures(Evidence.load(folder), topo, sc)
    assert drawn and drawn in page
    for mark in marks:
        assert mark in drawn, mark
