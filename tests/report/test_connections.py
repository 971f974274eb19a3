"""connection_records on real results folders: one record per connection however many
captures saw it, named by the topology's hosts, tied to its scenario, with the handshake
and close numbers the analysis finds in the capture itself."""

from __future__ import annotations

from collections import Counter

import pytest

from lab.evidence.analysis import read_packets, tcp_connections
from lab.evidence.connections import connection_records
from lab.evidence.records import IntSides, MaybeIntSides
from lab.run.record import load_run
from tests.report.conftest import Results

pytestmark = pytest.mark.netns


def _client_locals(res: Results) -> dict[str, str]:
    """Each client connection's local address -> its scenario, as the clients reported."""
    out = {}
    for name, sc in res.run["scenarios"].items():
        for client in sc["clients"].values():
            for conn in client["result"]["connections"]:
                out[conn["local"]] = name
    return out


def test_one_record_per_connection(root: None, default_run: Results) -> None:
    tcp_scenarios = [
        sc
        for sc in default_run.topology.scenarios
        if default_run.topology.service(sc.service).protocol == "tcp"
    ]
    expected = sum(sc.total_connections for sc in tcp_scenarios)
    conns = default_run.connections
    assert len(conns) == expected
    assert len({(c.client.ip, c.client.port) for c in conns}) == expected
    # On one LAN each connection is captured on the server's and the client's interface.
    for c in conns:
        assert c.client.node is not None
        assert sorted(p.split("/")[0] for p in c.seen_in) == sorted([c.client.node, "server"])
        assert c.path is None
    record = load_run(default_run.out)
    again = connection_records(default_run.out, default_run.topology, record)
    assert again == conns


def test_hosts_and_scenarios_match_what_the_clients_reported(
    root: None, default_run: Results
) -> None:
    locals_ = _client_locals(default_run)
    for c in default_run.connections:
        local = f"{c.client.ip}:{c.client.port}"
        assert c.scenario == locals_[local]
        assert c.server.node == "server"
        assert c.client.node is not None and c.service is not None
        assert default_run.topology.node(c.client.node).interfaces[0].address.exploded == (
            c.client.ip
        )
        service = default_run.topology.service(c.service)
        assert service.port == c.server.port
    assert Counter(c.scenario for c in default_run.connections) == {
        sc.name: sc.total_connections
        for sc in default_run.topology.scenarios
        if sc.name != "udp-echo"
    }


def test_handshake_and_close_numbers_come_from_the_capture(
    root: None, default_run: Results
) -> None:
    for c in default_run.connections:
        packets = read_packets(default_run.out / c.evidence)
        [conn] = [
            x
            for x in tcp_connections(packets)
            if (x.client.ip, x.client.port) == (c.client.ip, c.client.port)
        ]
        hs = c.handshake
        assert hs.ok is True, hs.reason
        assert hs.client_isn == conn.handshake.client_isn
        assert hs.server_isn == conn.handshake.server_isn
        assert hs.mss == MaybeIntSides(conn.handshake.client_mss, conn.handshake.server_mss)
        assert hs.windows.client == conn.handshake.client_window
        node = {"client": c.client.node, "server": c.server.node}
        assert c.close.kind == conn.close.kind
        assert c.close.first_fin_by == node[conn.close.first_fin_by or ""]
        assert c.close.time_wait_by == [node[s] for s in conn.close.time_wait_by]
        assert c.segment_count == len(conn.segments)
        first = c.segments[0]
        assert first.flags == ["SYN"] and first.seq == 0 and first.sender == "client"


def test_udp_flows_are_listed_apart(root: None, default_run: Results) -> None:
    flows = default_run.udp_flows
    scenario = default_run.topology.scenarios[3]
    assert scenario.name == "udp-echo"
    assert len(flows) == scenario.total_connections
    for f in flows:
        assert f.scenario == "udp-echo"
        assert f.server.port == default_run.topology.service("udp").port
        assert f.datagrams == IntSides(len(scenario.send), len(scenario.send))
        assert f.sizes[:2] == [len(scenario.send[0].encode())] * 2


def test_a_routed_connection_says_what_the_router_changed(root: None, routed_run: Results) -> None:
    conns = routed_run.connections
    assert len(conns) == 3
    for c in conns:
        assert c.client.node == "client" and c.server.node == "server"
        # Client, router (both sides) and server captures, one record.
        assert len(c.seen_in) == 4
        assert c.evidence == "client/eth0.pcap"
        assert c.path is not None
        assert c.path.summary == "IPs unchanged, MACs rewritten, TTL 64 -> 63"
        hop = c.path.client_to_server
        assert hop is not None
        assert hop.upstream.ttl - hop.downstream.ttl == 1
