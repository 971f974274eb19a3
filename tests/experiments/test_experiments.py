"""The experiments: every file validates, every run passes every check on real network
namespaces, and every claim fails on evidence that contradicts it (a copied results folder
with a capture or snapshot changed, or another experiment's evidence where the claim must
not hold)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dpkt
import pytest

from lab.errors import TopologyError
from lab.evidence.folder import Evidence
from lab.spec.model import Scenario, Topology
from lab.spec.topology import load_topology, load_topology_text, validate_file
from lab.verdict import claims
from lab.verdict.check import Check
from tests.experiments.conftest import EXPERIMENTS, NAMES, RUN_NAMES, Runs

# -- the files --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_experiment_file_validates(name: str) -> None:
    path = EXPERIMENTS / f"{name}.yaml"
    assert validate_file(path) == []
    # A spot-the-bug experiment may catch its bug with the built-in checks alone (the
    # thread table's crash: service-ran and replies); every other scenario makes a claim.
    assert all(sc.claims or name.startswith("bug-") for sc in load_topology(path).scenarios)


def test_every_claim_is_made_by_some_experiment() -> None:
    made = {
        c
        for n in NAMES
        for sc in load_topology(EXPERIMENTS / f"{n}.yaml").scenarios
        for c in sc.claims
    }
    assert made == set(claims.CLAIMS)


def test_experiment_subnets_are_distinct() -> None:
    topos = [load_topology(EXPERIMENTS / f"{n}.yaml") for n in NAMES]
    subnets = [net.subnet for t in topos for net in t.networks]
    assert len(subnets) == len(set(subnets))


_LAB = """
networks: {lan: {subnet: 10.77.199.0/24}}
nodes:
  s: {interfaces: {lan: 10.77.199.10}}
  c: {interfaces: {lan: 10.77.199.11}}
services:
  tcp: {node: s, program: fork_server}
  udp: {node: s, program: udp_echo}
scenarios:
  - {name: x, service: SERVICE, clients: [c], send: [a], expect: [A], claims: CLAIMS}
"""


def _problems(service: str, claim_list: str) -> list[str]:
    text = _LAB.replace("SERVICE", service).replace("CLAIMS", claim_list)
    with pytest.raises(TopologyError) as info:
        load_topology_text(text, "t.yaml")
    return info.value.problems


def test_unknown_claim_gets_a_suggestion() -> None:
    assert _problems("tcp", "[handshak]") == [
        "t.yaml:10: scenarios[0].claims[0]: unknown claim 'handshak' (did you mean 'handshake'?)"
    ]


def test_claim_listed_twice_is_refused() -> None:
    assert _problems("tcp", "[handshake, handshake]") == [
        "t.yaml:10: scenarios[0].claims[1]: claim 'handshake' is listed twice"
    ]


def test_tcp_claim_on_udp_service_is_refused() -> None:
    assert _problems("udp", "[handshake]") == [
        "t.yaml:10: scenarios[0].claims[0]: claim 'handshake' is about TCP; service 'udp' is not"
    ]


def test_claims_reach_the_model() -> None:
    text = _LAB.replace("SERVICE", "udp").replace("CLAIMS", "[no-handshake, no-time-wait]")
    topo = load_topology_text(text, "t.yaml")
    assert topo.scenarios[0].claims == ("no-handshake", "no-time-wait")


# -- the runs ---------------------------------------------------------------------------------


def needs_netem(topology: Topology, backend: str) -> bool:
    """Whether the kernel's netem qdisc is needed: for delay and the like everywhere, for
    any impairment on Docker (the netns backend alone drops and shapes without it)."""
    wanted = [i.netem for i in topology.impairments]
    wanted += [st.netem for sc in topology.scenarios for st in sc.impair]
    return any(n.netem_only() for n in wanted) or (backend == "docker" and bool(wanted))


def test_only_the_loss_experiment_runs_without_netem_on_netns() -> None:
    needy = {n for n in NAMES if needs_netem(load_topology(EXPERIMENTS / f"{n}.yaml"), "netns")}
    assert needy == {"rtt", "slow-start", "reorder"}


@pytest.mark.parametrize("name", RUN_NAMES)
def test_experiment_passes(backend_runs: Runs, name: str, request: pytest.FixtureRequest) -> None:
    """On every backend (the fixture's parameter, which also puts the test in its tier)."""
    _, status, summary, stderr = backend_runs[name]
    backend = request.node.callspec.params["backend_runs"]
    if needs_netem(load_topology(EXPERIMENTS / f"{name}.yaml"), backend):
        request.getfixturevalue("netem_kernel")
    assert summary is not None, stderr
    failed = [
        f"{sc['name']}: {c['name']}: {c['detail']}"
        for sc in summary["scenarios"]
        for c in sc["checks"]
        if not c["passed"]
    ]
    assert failed == [] and status == 0 and summary["passed"], stderr
    # Each claim the file makes was judged, under its own name, in the summary.
    folder = backend_runs[name][0]
    topo = load_topology(folder / "topology.yaml", sources=False)
    by_scenario = {sc["name"]: {c["name"] for c in sc["checks"]} for sc in summary["scenarios"]}
    for sc in topo.scenarios:
        judged = claims.claim_checks(topo, Evidence.load(folder), sc)
        assert len(judged) == len(sc.claims)
        assert {c.name for c in judged} <= by_scenario[sc.name]


# -- each claim can fail ----------------------------------------------------------------------


def _folder(runs: Runs, name: str, tmp_path: Path) -> Path:
    src = runs[name][0]
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _judge(folder: Path, scenario: str, claim: str) -> Check:
    topo: Topology = load_topology(folder / "topology.yaml", sources=False)
    sc: Scenario = next(s for s in topo.scenarios if s.name == scenario)
    return claims.CLAIMS[claim](topo, Evidence.load(folder), sc)


Frame = dpkt.ethernet.Ethernet
Edit = Callable[[Frame, list[Frame]], Frame | None]


def _rewrite(pcap: Path, edit: Edit) -> int:
    """Rewrite a capture frame by frame; ``edit`` returns the frame to keep (changed or
    not) or None to drop it, and sees the frames kept so far. Returns the number of frames
    dropped or replaced (an edit that changes a frame returns a new one: see _refresh)."""
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


def _tcp(eth: dpkt.ethernet.Ethernet) -> Any:
    ip = eth.data
    return ip.data if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP) else None


def _udp(eth: dpkt.ethernet.Ethernet) -> Any:
    ip = eth.data
    return ip.data if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.udp.UDP) else None


def _refresh(eth: dpkt.ethernet.Ethernet) -> dpkt.ethernet.Ethernet:
    """Recompute lengths and checksums after a change."""
    ip = eth.data
    ip.data.sum = 0
    ip.sum = 0
    ip.len = len(ip)
    return dpkt.ethernet.Ethernet(bytes(eth))


def _server_pcap(folder: Path) -> Path:
    return folder / "server" / "eth0.pcap"


@pytest.mark.netns
def test_handshake_fails_when_syn_ack_acks_the_wrong_number(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "handshake", tmp_path)
    assert _judge(folder, "connect", "handshake").passed

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = _tcp(eth)
        if tcp is not None and tcp.flags & dpkt.tcp.TH_SYN and tcp.flags & dpkt.tcp.TH_ACK:
            tcp.ack = (tcp.ack + 1) % (1 << 32)
            return _refresh(eth)
        return eth

    assert _rewrite(_server_pcap(folder), edit) >= 1
    check = _judge(folder, "connect", "handshake")
    assert not check.passed and "expected client ISN + 1" in check.detail


def _drop_server_fins(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
    tcp = _tcp(eth)
    if tcp is not None and tcp.flags & dpkt.tcp.TH_FIN and tcp.sport < tcp.dport:
        return None  # the server's port is the low, well-known one
    return eth


@pytest.mark.netns
@pytest.mark.parametrize("claim", ["four-way-close", "close-wait-on-server"])
def test_close_claims_fail_without_the_servers_fin(
    root: None, experiment_runs: Runs, tmp_path: Path, claim: str
) -> None:
    folder = _folder(experiment_runs, "close", tmp_path)
    assert _judge(folder, "close", claim).passed
    assert _rewrite(_server_pcap(folder), _drop_server_fins) >= 1
    check = _judge(folder, "close", claim)
    assert not check.passed and "fail" in check.detail


@pytest.mark.netns
def test_time_wait_on_client_fails_when_the_snapshot_shows_none(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "close", tmp_path)
    assert _judge(folder, "close", "time-wait-on-client").passed
    for kind, old, new in (("ss", "TIME-WAIT", "ESTAB"), ("netstat", "TIME_WAIT", "ESTABLISHED")):
        snap = folder / "client" / "snapshots" / f"after.{kind}.txt"
        snap.write_text(snap.read_text().replace(old, new))
    check = _judge(folder, "close", "time-wait-on-client")
    assert not check.passed and "not in TIME_WAIT" in check.detail


@pytest.mark.netns
def test_half_close_fails_when_the_client_resets(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "close", tmp_path)
    assert _judge(folder, "half-close", "half-close").passed

    def edit(eth: dpkt.ethernet.Ethernet, kept: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = _tcp(eth)
        # The client's ACK of the server's FIN becomes a RST: the receiving half was shut too.
        if tcp is None or tcp.sport < tcp.dport or tcp.flags & (dpkt.tcp.TH_FIN | dpkt.tcp.TH_RST):
            return eth
        fins = [
            _tcp(e)
            for e in kept
            if _tcp(e) is not None
            and _tcp(e).flags & dpkt.tcp.TH_FIN
            and _tcp(e).sport == tcp.dport
            and _tcp(e).dport == tcp.sport
        ]
        if fins:
            tcp.flags = dpkt.tcp.TH_RST
            return _refresh(eth)
        return eth

    assert _rewrite(_server_pcap(folder), edit) >= 1
    check = _judge(folder, "half-close", "half-close")
    assert not check.passed and "RST" in check.detail


@pytest.mark.netns
def test_no_handshake_fails_when_the_flow_does_not_open_with_the_first_datagram(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "udp", tmp_path)
    assert _judge(folder, "datagrams", "no-handshake").passed

    dropped: list[bytes] = []

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        udp = _udp(eth)
        if udp is not None and not dropped:
            dropped.append(udp.data)  # the client's first datagram never reached the wire
            return None
        return eth

    assert _rewrite(_server_pcap(folder), edit) == 1
    check = _judge(folder, "datagrams", "no-handshake")
    assert not check.passed and "began with" in check.detail


@pytest.mark.netns
def test_datagram_boundaries_fail_when_a_reply_is_missing(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "udp", tmp_path)
    assert _judge(folder, "datagrams", "datagram-boundaries").passed

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        udp = _udp(eth)
        return None if udp is not None and udp.data == b"two words" and udp.sport == 8080 else eth

    assert _rewrite(_server_pcap(folder), edit) == 1
    assert not _judge(folder, "datagrams", "datagram-boundaries").passed


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
        if (u := _udp(dpkt.ethernet.Ethernet(buf))) is not None and (replies or u.dport == 8080)
    ]
    with pcap.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=linktype)
        for ts, buf in [*frames, *again]:
            writer.writepkt(buf, ts)


@pytest.mark.netns
def test_datagram_boundaries_take_a_reused_client_port_as_a_second_exchange(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "udp", tmp_path)
    _replay_udp(_server_pcap(folder), replies=True)
    check = _judge(folder, "datagrams", "datagram-boundaries")
    assert check.passed and "2 exchanges" in check.detail, check.detail

    folder = _folder(experiment_runs, "udp", tmp_path / "unanswered")
    _replay_udp(_server_pcap(folder), replies=False)
    assert not _judge(folder, "datagrams", "datagram-boundaries").passed


@pytest.mark.netns
def test_utf8_on_wire_fails_when_the_bytes_are_not_there(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "dictionary", tmp_path)
    assert _judge(folder, "lookup", "utf8-on-wire").passed
    nihao = "你好".encode()

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = _tcp(eth)
        if tcp is not None and nihao in tcp.data:
            tcp.data = tcp.data.replace(nihao, b"?" * len(nihao))
            return _refresh(eth)
        return eth

    assert _rewrite(_server_pcap(folder), edit) >= 1
    check = _judge(folder, "lookup", "utf8-on-wire")
    assert not check.passed and "e4 bd a0 e5 a5 bd" in check.detail


def _server_port(folder: Path, service: str) -> int:
    return load_topology(folder / "topology.yaml", sources=False).service(service).port


def _from_server(port: int) -> Callable[[Any], bool]:
    return lambda tcp: tcp is not None and tcp.sport == port


@pytest.mark.netns
def test_four_way_close_with_close_delay_refuses_three_segments(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "close", tmp_path)
    assert _judge(folder, "close", "four-way-close").passed
    server = _from_server(_server_port(folder, "echo"))
    fin_seen: set[int] = set()

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        # Drop the server's lone ACK of the client's FIN: its FIN then carries the ACK.
        tcp = _tcp(eth)
        if tcp is None:
            return eth
        if tcp.flags & dpkt.tcp.TH_FIN and not server(tcp):
            fin_seen.add(tcp.sport)
        alone = tcp.flags == dpkt.tcp.TH_ACK and not tcp.data
        return None if server(tcp) and alone and tcp.dport in fin_seen else eth

    assert _rewrite(_server_pcap(folder), edit) >= 2
    check = _judge(folder, "close", "four-way-close")
    assert not check.passed
    assert "close was three-way" in check.detail and "waits 0.5 s after EOF" in check.detail


@pytest.mark.netns
def test_four_way_close_names_the_three_segment_form(root: None, experiment_runs: Runs) -> None:
    check = _judge(experiment_runs["close"][0], "half-close", "four-way-close")
    assert check.passed
    # Without close_delay the server closes at once; whichever form, it is named.
    assert "three-way: FIN, FIN+ACK, ACK" in check.detail or "four-way: FIN, ACK" in check.detail


@pytest.mark.netns
def test_zero_window_fails_without_the_servers_probes(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "window", tmp_path)
    assert _judge(folder, "stalled", "zero-window").passed
    port = _server_port(folder, "echo")

    def edit(eth: dpkt.ethernet.Ethernet, kept: list[Any]) -> dpkt.ethernet.Ethernet | None:
        # Whatever the server sends while the client's last word was "window 0" goes.
        tcp = _tcp(eth)
        if tcp is None or tcp.sport != port:
            return eth
        client = [_tcp(e) for e in kept if _tcp(e) is not None and _tcp(e).dport == port]
        return None if client and client[-1].win == 0 else eth

    assert _rewrite(_server_pcap(folder), edit) >= 1
    check = _judge(folder, "stalled", "zero-window")
    assert not check.passed and "the server never probed" in check.detail


@pytest.mark.netns
def test_window_reopens_fails_without_the_window_update(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "window", tmp_path)
    assert _judge(folder, "stalled", "window-reopens").passed
    server_port = _server_port(folder, "echo")

    def edit(eth: dpkt.ethernet.Ethernet, kept: list[Any]) -> dpkt.ethernet.Ethernet | None:
        # Every empty client ACK opening the window after a zero window is dropped.
        tcp = _tcp(eth)
        if tcp is None or tcp.dport != server_port or tcp.data or tcp.flags != dpkt.tcp.TH_ACK:
            return eth
        mine = [_tcp(e) for e in kept if _tcp(e) is not None and _tcp(e).dport == server_port]
        closed = bool(mine) and mine[-1].win == 0
        return None if closed and tcp.win > 0 else eth

    assert _rewrite(_server_pcap(folder), edit) >= 1
    check = _judge(folder, "stalled", "window-reopens")
    assert not check.passed and "no window update from the client" in check.detail


@pytest.mark.netns
def test_window_reopens_fails_when_a_reply_is_wrong(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "window", tmp_path)
    run = folder / "run.json"
    run.write_text(run.read_text().replace('"ITS BUFFER FILLS"', '"ITS BUFFER"', 1))
    check = _judge(folder, "stalled", "window-reopens")
    assert not check.passed and "1599/1600 replies right" in check.detail


@pytest.mark.netns
def test_served_in_turn_fails_when_the_first_client_is_never_done(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "iterative", tmp_path)
    assert _judge(folder, "second", "served-in-turn").passed
    assert _rewrite(_server_pcap(folder), _drop_server_fins) >= 1
    check = _judge(folder, "second", "served-in-turn")
    assert not check.passed and "before" in check.detail


@pytest.mark.netns
def test_syn_retransmitted_fails_when_each_syn_is_sent_once(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = _folder(experiment_runs, "iterative", tmp_path)
    assert _judge(folder, "dropped", "syn-retransmitted").passed
    first_syn: set[tuple[int, int]] = set()

    def edit(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        tcp = _tcp(eth)
        if tcp is None or tcp.flags != dpkt.tcp.TH_SYN:
            return eth
        if (tcp.sport, tcp.seq) in first_syn:
            return None  # a retransmission: the same port and ISN again
        first_syn.add((tcp.sport, tcp.seq))
        return eth

    assert _rewrite(_server_pcap(folder), edit) >= 2
    check = _judge(folder, "dropped", "syn-retransmitted")
    assert not check.passed and "0/2 connections had their SYN sent again" in check.detail


@pytest.mark.netns
def test_syn_retransmitted_needs_a_full_queue(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    # The same wire, judged as if the backlog had been 8: two waiting connections do not
    # fill that queue, so the retransmitted SYNs must have another cause.
    folder = _folder(experiment_runs, "iterative", tmp_path)
    topo = folder / "topology.yaml"
    assert "{backlog: 1}" in topo.read_text()
    topo.write_text(topo.read_text().replace("{backlog: 1}", "{backlog: 8}"))
    check = _judge(folder, "dropped", "syn-retransmitted")
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
    check = _judge(experiment_runs[name][0], scenario, claim)
    assert not check.passed
    assert seen in check.detail


def test_experiment_list_shows_every_experiment() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lab.cli", "experiment", "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert listed == NAMES
    assert {"window", "iterative"} <= set(listed)


def test_every_declared_claim_is_judged() -> None:
    from lab.spec.claims import CLAIM_SPECS

    assert list(CLAIM_SPECS) == list(claims.CLAIMS)
