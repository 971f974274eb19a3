"""Every claim can fail: judged again on a copy of an experiment's evidence with a capture
or snapshot changed, or on another experiment's real evidence where it must not hold."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dpkt
import pytest

from lab.spec.topology import load_topology
from tests.experiments.conftest import Runs
from tests.experiments.evidence_edit import (
    copy_results,
    judge,
    refresh,
    rewrite,
    server_pcap,
    tcp_of,
    udp_of,
)


@pytest.mark.netns
def test_handshake_fails_when_syn_ack_acks_the_wrong_number(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "handshake", tmp_path)
    assert judge(folder, "connect", "handshake").passed

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = tcp_of(eth)
        if tcp is not None and tcp.flags & dpkt.tcp.TH_SYN and tcp.flags & dpkt.tcp.TH_ACK:
            tcp.ack = (tcp.ack + 1) % (1 << 32)
            return refresh(eth)
        return eth

    assert rewrite(server_pcap(folder), edit) >= 1
    check = judge(folder, "connect", "handshake")
    assert not check.passed and "expected client ISN + 1" in check.detail


def _drop_server_fins(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
    tcp = tcp_of(eth)
    if tcp is not None and tcp.flags & dpkt.tcp.TH_FIN and tcp.sport < tcp.dport:
        return None  # the server's port is the low, well-known one
    return eth


@pytest.mark.netns
@pytest.mark.parametrize("claim", ["four-way-close", "close-wait-on-server"])
def test_close_claims_fail_without_the_servers_fin(
    root: None, experiment_runs: Runs, tmp_path: Path, claim: str
) -> None:
    folder = copy_results(experiment_runs, "close", tmp_path)
    assert judge(folder, "close", claim).passed
    assert rewrite(server_pcap(folder), _drop_server_fins) >= 1
    check = judge(folder, "close", claim)
    assert not check.passed and "fail" in check.detail


@pytest.mark.netns
def test_close_wait_on_server_fails_when_the_server_still_holds_it_after_the_clients(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    """The wire's order alone passes a server whose FIN came only when it was stopped; its
    "after" snapshot, still in CLOSE_WAIT with the clients gone, fails it."""
    folder = copy_results(experiment_runs, "close", tmp_path)
    assert judge(folder, "close", "close-wait-on-server").passed
    client = (folder / "client" / "snapshots" / "after.ss.txt").read_text().splitlines()
    # Each of the client's TIME_WAIT sockets as the server would hold it, not yet closed.
    held = [
        f"CLOSE-WAIT 0 0 {w[4]} {w[3]}"
        for w in (line.split() for line in client)
        if w and w[0] == "TIME-WAIT"
    ]
    assert held
    server = folder / "server" / "snapshots" / "after.ss.txt"
    server.write_text(server.read_text() + "\n".join(held) + "\n")
    check = judge(folder, "close", "close-wait-on-server")
    assert not check.passed and "still in CLOSE_WAIT on the server" in check.detail


@pytest.mark.netns
def test_time_wait_on_client_fails_when_the_snapshot_shows_none(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "close", tmp_path)
    assert judge(folder, "close", "time-wait-on-client").passed
    for kind, old, new in (("ss", "TIME-WAIT", "ESTAB"), ("netstat", "TIME_WAIT", "ESTABLISHED")):
        snap = folder / "client" / "snapshots" / f"after.{kind}.txt"
        snap.write_text(snap.read_text().replace(old, new))
    check = judge(folder, "close", "time-wait-on-client")
    assert not check.passed and "not in TIME_WAIT" in check.detail


@pytest.mark.netns
def test_half_close_fails_when_the_client_resets(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "close", tmp_path)
    assert judge(folder, "half-close", "half-close").passed

    def edit(eth: dpkt.ethernet.Ethernet, kept: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = tcp_of(eth)
        # The client's ACK of the server's FIN becomes a RST: the receiving half was shut too.
        if tcp is None or tcp.sport < tcp.dport or tcp.flags & (dpkt.tcp.TH_FIN | dpkt.tcp.TH_RST):
            return eth
        fins = [
            tcp_of(e)
            for e in kept
            if tcp_of(e) is not None
            and tcp_of(e).flags & dpkt.tcp.TH_FIN
            and tcp_of(e).sport == tcp.dport
            and tcp_of(e).dport == tcp.sport
        ]
        if fins:
            tcp.flags = dpkt.tcp.TH_RST
            return refresh(eth)
        return eth

    assert rewrite(server_pcap(folder), edit) >= 1
    check = judge(folder, "half-close", "half-close")
    assert not check.passed and "RST" in check.detail


@pytest.mark.netns
def test_no_handshake_fails_when_the_flow_does_not_open_with_the_first_datagram(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "udp", tmp_path)
    assert judge(folder, "datagrams", "no-handshake").passed

    dropped: list[bytes] = []

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        udp = udp_of(eth)
        if udp is not None and not dropped:
            dropped.append(udp.data)  # the client's first datagram never reached the wire
            return None
        return eth

    assert rewrite(server_pcap(folder), edit) == 1
    check = judge(folder, "datagrams", "no-handshake")
    assert not check.passed and "began with" in check.detail


@pytest.mark.netns
def test_datagram_boundaries_fail_when_a_reply_is_missing(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "udp", tmp_path)
    assert judge(folder, "datagrams", "datagram-boundaries").passed

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        udp = udp_of(eth)
        return None if udp is not None and udp.data == b"two words" and udp.sport == 8080 else eth

    assert rewrite(server_pcap(folder), edit) == 1
    assert not judge(folder, "datagrams", "datagram-boundaries").passed


def _replay_udp(pcap: Path, *, replies: bool) -> None:
    """Append the capture's UDP frames again a second later, as a later client given the
    same source port would send them; without ``replies`` only the client's frames."""
    with pcap.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        frames = [(ts, buf) for ts, buf in reader]
        linktype = reader.datalink()
    again = [
        (ts + 1.0, buf)
        for ts, buf in frames
        if (u := udp_of(dpkt.ethernet.Ethernet(buf))) is not None and (replies or u.dport == 8080)
    ]
    with pcap.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=linktype)
        for ts, buf in [*frames, *again]:
            writer.writepkt(buf, ts)


@pytest.mark.netns
def test_datagram_boundaries_take_a_reused_client_port_as_a_second_exchange(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "udp", tmp_path)
    _replay_udp(server_pcap(folder), replies=True)
    check = judge(folder, "datagrams", "datagram-boundaries")
    assert check.passed and "2 exchanges" in check.detail, check.detail

    folder = copy_results(experiment_runs, "udp", tmp_path / "unanswered")
    _replay_udp(server_pcap(folder), replies=False)
    assert not judge(folder, "datagrams", "datagram-boundaries").passed


@pytest.mark.netns
def test_utf8_on_wire_fails_when_the_bytes_are_not_there(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "dictionary", tmp_path)
    assert judge(folder, "lookup", "utf8-on-wire").passed
    nihao = "你好".encode()

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = tcp_of(eth)
        if tcp is not None and nihao in tcp.data:
            tcp.data = tcp.data.replace(nihao, b"?" * len(nihao))
            return refresh(eth)
        return eth

    assert rewrite(server_pcap(folder), edit) >= 1
    check = judge(folder, "lookup", "utf8-on-wire")
    assert not check.passed and "e4 bd a0 e5 a5 bd" in check.detail


def _server_port(folder: Path, service: str) -> int:
    return load_topology(folder / "topology.yaml", sources=False).service(service).port


def _from_server(port: int) -> Callable[[Any], bool]:
    return lambda tcp: tcp is not None and tcp.sport == port


@pytest.mark.netns
def test_four_way_close_with_close_delay_refuses_three_segments(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "close", tmp_path)
    assert judge(folder, "close", "four-way-close").passed
    server = _from_server(_server_port(folder, "echo"))
    fin_seen: set[int] = set()

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        # Drop the server's lone ACK of the client's FIN: its FIN then carries the ACK.
        tcp = tcp_of(eth)
        if tcp is None:
            return eth
        if tcp.flags & dpkt.tcp.TH_FIN and not server(tcp):
            fin_seen.add(tcp.sport)
        alone = tcp.flags == dpkt.tcp.TH_ACK and not tcp.data
        return None if server(tcp) and alone and tcp.dport in fin_seen else eth

    assert rewrite(server_pcap(folder), edit) >= 2
    check = judge(folder, "close", "four-way-close")
    assert not check.passed
    assert "close was three-way" in check.detail and "waits 0.5 s after EOF" in check.detail


@pytest.mark.netns
def test_four_way_close_names_the_three_segment_form(root: None, experiment_runs: Runs) -> None:
    check = judge(experiment_runs["close"][0], "half-close", "four-way-close")
    assert check.passed
    # Without close_delay the server closes at once; whichever form, it is named.
    assert "three-way: FIN, FIN+ACK, ACK" in check.detail or "four-way: FIN, ACK" in check.detail


@pytest.mark.netns
def test_zero_window_fails_without_the_servers_probes(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "window", tmp_path)
    assert judge(folder, "stalled", "zero-window").passed
    port = _server_port(folder, "echo")

    def edit(eth: dpkt.ethernet.Ethernet, kept: list[Any]) -> dpkt.ethernet.Ethernet | None:
        # Whatever the server sends while the client's last word was "window 0" goes.
        tcp = tcp_of(eth)
        if tcp is None or tcp.sport != port:
            return eth
        client = [tcp_of(e) for e in kept if tcp_of(e) is not None and tcp_of(e).dport == port]
        return None if client and client[-1].win == 0 else eth

    assert rewrite(server_pcap(folder), edit) >= 1
    check = judge(folder, "stalled", "zero-window")
    assert not check.passed and "the server never probed" in check.detail


@pytest.mark.netns
def test_window_reopens_fails_without_the_window_update(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "window", tmp_path)
    assert judge(folder, "stalled", "window-reopens").passed
    server_port = _server_port(folder, "echo")

    def edit(eth: dpkt.ethernet.Ethernet, kept: list[Any]) -> dpkt.ethernet.Ethernet | None:
        # Every empty client ACK opening the window after a zero window is dropped.
        tcp = tcp_of(eth)
        if tcp is None or tcp.dport != server_port or tcp.data or tcp.flags != dpkt.tcp.TH_ACK:
            return eth
        mine = [tcp_of(e) for e in kept if tcp_of(e) is not None and tcp_of(e).dport == server_port]
        closed = bool(mine) and mine[-1].win == 0
        return None if closed and tcp.win > 0 else eth

    assert rewrite(server_pcap(folder), edit) >= 1
    check = judge(folder, "stalled", "window-reopens")
    assert not check.passed and "no window update from the client" in check.detail


@pytest.mark.netns
def test_window_reopens_fails_when_a_reply_is_wrong(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "window", tmp_path)
    run = folder / "run.json"
    run.write_text(run.read_text().replace('"ITS BUFFER FILLS"', '"ITS BUFFER"', 1))
    check = judge(folder, "stalled", "window-reopens")
    assert not check.passed and "1599/1600 replies right" in check.detail


@pytest.mark.netns
def test_served_in_turn_fails_when_the_first_client_is_never_done(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "iterative", tmp_path)
    assert judge(folder, "second", "served-in-turn").passed
    assert rewrite(server_pcap(folder), _drop_server_fins) >= 1
    check = judge(folder, "second", "served-in-turn")
    assert not check.passed and "before" in check.detail


@pytest.mark.netns
def test_syn_retransmitted_fails_when_each_syn_is_sent_once(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "iterative", tmp_path)
    assert judge(folder, "dropped", "syn-retransmitted").passed
    first_syn: set[tuple[int, int]] = set()

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        tcp = tcp_of(eth)
        if tcp is None or tcp.flags != dpkt.tcp.TH_SYN:
            return eth
        if (tcp.sport, tcp.seq) in first_syn:
            return None  # a retransmission: the same port and ISN again
        first_syn.add((tcp.sport, tcp.seq))
        return eth

    assert rewrite(server_pcap(folder), edit) >= 2
    check = judge(folder, "dropped", "syn-retransmitted")
    assert not check.passed and "0/2 connections had their SYN sent again" in check.detail


@pytest.mark.netns
def test_syn_retransmitted_needs_a_full_queue(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    # The same wire, judged as if the backlog had been 8: two waiting connections do not
    # fill that queue, so the retransmitted SYNs must have another cause.
    folder = copy_results(experiment_runs, "iterative", tmp_path)
    topo = folder / "topology.yaml"
    assert "{backlog: 1}" in topo.read_text()
    topo.write_text(topo.read_text().replace("{backlog: 1}", "{backlog: 8}"))
    check = judge(folder, "dropped", "syn-retransmitted")
    assert not check.passed and "not with a full queue" in check.detail


# Claims judged on another experiment's real evidence, where they must not hold.
CONTRADICTIONS = [
    ("no-time-wait", "close", "close", "TIME_WAIT sockets"),  # TCP leaves TIME_WAIT
    ("n-children", "thread", "held", "0 live children"),  # threads, not processes
    ("one-process-n-threads", "fork", "reaped", "3 child processes"),
    ("children-reaped", "fork", "zombies", "3 zombie"),  # --no-reap
    ("zombies", "fork", "reaped", "0 zombie"),
    ("ips-unchanged-macs-rewritten", "handshake", "connect", "0/"),  # one LAN: no router
    ("ttl-decremented", "handshake", "connect", "0/"),
    ("zero-window", "close", "close", "never advertised window 0"),  # a reader that reads
    ("window-reopens", "close", "close", "no window update from the client"),
    ("served-in-turn", "handshake", "connect", "fail"),  # the fork server serves both at once
    ("syn-retransmitted", "handshake", "connect", "0/2 connections had their SYN sent again"),
]


@pytest.mark.netns
@pytest.mark.parametrize(("claim", "name", "scenario", "seen"), CONTRADICTIONS)
def test_claim_fails_where_it_does_not_hold(
    root: None, experiment_runs: Runs, claim: str, name: str, scenario: str, seen: str
) -> None:
    check = judge(experiment_runs[name][0], scenario, claim)
    assert not check.passed
    assert seen in check.detail
