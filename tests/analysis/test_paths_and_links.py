"""Link types (Ethernet, SLL, SLL2), UDP flows, pcap validation and the same connection
seen on both sides of a router."""

from __future__ import annotations

import json
from pathlib import Path

import dpkt

from lab.evidence.analysis import flows_between, pcap_ok, read_packets, tcp_connections, udp_flows
from lab.evidence.analysis.paths import match_connections
from lab.evidence.analysis.pcap import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2
from tests.analysis.conftest import Handshake, LinkFramer, Wire, WireFactory

ROUTER_LEFT = b"\x02\x00\x00\x00\x01\x01"
ROUTER_RIGHT = b"\x02\x00\x00\x00\x02\x01"


def exchange(w: Wire, tcp_handshake: Handshake) -> None:
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "PA", 1001, 5001, b"love\n")
    w.tcp("s", "PA", 5001, 1006, "爱\n".encode())
    w.tcp("c", "FA", 1006, 5005)
    w.tcp("s", "FA", 5005, 1007)
    w.tcp("c", "A", 1007, 5006)


def test_same_analysis_on_ethernet_sll_and_sll2(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    exchange(w, tcp_handshake)
    results = {}
    for lt in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2):
        path = w.write(tmp_path / f"{lt}.pcap", lt)
        ok, why = pcap_ok(path)
        assert ok and f"linktype {lt}" in why and "8 frames" in why, why
        packets = read_packets(path)
        conn = tcp_connections(packets)[0]
        results[lt] = [(s.sender, s.flags, s.relative_seq, s.relative_ack) for s in conn.segments]
        assert conn.close.kind == "three-way" and conn.handshake.ok
        assert packets[0].src_mac == "02:00:00:00:01:02"
        if lt == LINKTYPE_ETHERNET:
            assert packets[0].dst_mac == "02:00:00:00:02:02" and packets[0].direction is None
        else:
            assert packets[0].dst_mac is None and packets[0].direction == "in"
        assert packets[-1].interface_index == (2 if lt == LINKTYPE_LINUX_SLL2 else None)
    assert results[LINKTYPE_ETHERNET] == results[LINKTYPE_LINUX_SLL] == results[LINKTYPE_LINUX_SLL2]
    assert len(results[LINKTYPE_ETHERNET]) == 8


def test_any_interface_copies_on_a_router_are_counted_once(
    wire: WireFactory, tcp_handshake: Handshake, make_link_frame: LinkFramer, tmp_path: Path
) -> None:
    """``tcpdump -i any`` on a router sees each packet arrive on one interface and leave
    on the other with TTL - 1; that is one packet, not a retransmission."""
    w = wire()
    exchange(w, tcp_handshake)
    path = tmp_path / "any.pcap"
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=LINKTYPE_LINUX_SLL2)
        for fr in w.frames:
            writer.writepkt(make_link_frame(fr, LINKTYPE_LINUX_SLL2, False, 2), ts=fr.time)
            fr.ip.ttl -= 1
            fr.ip.sum = 0
            writer.writepkt(make_link_frame(fr, LINKTYPE_LINUX_SLL2, True, 3), ts=fr.time + 1e-5)
    packets = read_packets(path)
    assert len(packets) == 16
    conn = tcp_connections(packets)[0]
    assert len(conn.segments) == 8 and conn.retransmissions == ()
    assert conn.close.kind == "three-way"


def test_udp_datagrams_and_sizes(wire: WireFactory, tmp_path: Path) -> None:
    w = wire(server=("10.0.2.2", 7777))
    w.udp("c", b"ping")
    w.udp("s", b"ping")
    w.udp("c", b"x" * 1000)
    w.udp("s", b"x" * 1000)
    other = wire(client=("10.0.1.3", 50000), server=("10.0.2.2", 7777))
    other.udp("c", b"hi")
    w.frames += other.frames
    packets = read_packets(w.write(tmp_path / "u.pcap"))
    flows = udp_flows(packets)
    assert [f.client for f in flows] == [("10.0.1.2", 40000), ("10.0.1.3", 50000)]
    first = flows[0]
    assert first.server == ("10.0.2.2", 7777)
    assert first.sizes == (4, 4, 1000, 1000)
    assert [d.sender for d in first.datagrams] == ["client", "server", "client", "server"]
    assert (first.client_datagrams, first.server_bytes) == (2, 1004)
    assert first.datagrams[0].payload == b"ping"
    assert tcp_connections(packets) == []
    assert json.loads(json.dumps(first.to_dict()))["datagrams"][0]["payload"] == "ping"
    assert len(flows_between(packets, "10.0.2.2", "10.0.1.3", 7777, "udp")) == 1
    assert len(flows_between(packets, "10.0.2.2", None, 7777, "udp")) == 5
    assert flows_between(packets, "10.0.2.2", None, 7777, "tcp") == []


def test_pcap_ok_rejects_what_is_not_a_capture(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all, just text")
    ok, why = pcap_ok(junk)
    assert not ok and "not a pcap" in why
    assert pcap_ok(tmp_path / "missing.pcap")[0] is False
    empty = wire().write(tmp_path / "empty.pcap")
    assert pcap_ok(empty) == (True, "pcap, Ethernet (linktype 1), 0 frames, 0 IP")
    assert not pcap_ok(empty, min_packets=1)[0]
    # A capture cut in the middle of a record (tcpdump killed) is read up to the cut, and
    # is not "ok": the cut is said, with the record and its byte offset.
    w = wire()
    tcp_handshake(w)
    full = w.write(tmp_path / "full.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(full[:-10])
    ok, why = pcap_ok(cut)
    assert not ok and "2 frames" in why and "damaged: record 3 at byte" in why
    assert len(read_packets(cut)) == 2
    unsupported = tmp_path / "lt.pcap"
    with unsupported.open("wb") as f:
        dpkt.pcap.Writer(f, linktype=147).writepkt(b"\x00" * 40, ts=1.0)
    ok, why = pcap_ok(unsupported)
    assert not ok and "unsupported link type 147" in why


def test_connection_seen_on_both_sides_of_a_router(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    # Left network: client <-> router's left port; right network: router's right port <-> server.
    left = wire(server_mac=ROUTER_LEFT)
    exchange(left, tcp_handshake)
    right = wire(client_mac=ROUTER_RIGHT)
    exchange(right, tcp_handshake)
    for fl, fr in zip(left.frames, right.frames, strict=True):
        # What the client sends is decremented on the way right, and vice versa.
        if fl.src_mac == left.client_mac:
            fr.ip.ttl = 63
        else:
            fl.ip.ttl = 63
    a = tcp_connections(read_packets(left.write(tmp_path / "left.pcap")))
    b = tcp_connections(read_packets(right.write(tmp_path / "right.pcap")))
    other = wire(client=("10.0.1.9", 41000))
    tcp_handshake(other, 1, 2)
    b += tcp_connections(read_packets(other.write(tmp_path / "other.pcap")))
    matches = match_connections(a, b, "router-left", "router-right")
    assert len(matches) == 1
    m = matches[0]
    assert m.matched_by == "4-tuple and ISNs"
    assert m.summary == "IPs unchanged, MACs rewritten, TTL 64 -> 63"
    c2s, s2c = m.client_to_server, m.server_to_client
    assert c2s is not None and s2c is not None
    assert c2s.upstream.capture == "router-left" and c2s.ttl_change == -1
    assert c2s.flags == ("SYN",)
    assert (c2s.upstream.dst_mac, c2s.downstream.src_mac) == (
        "02:00:00:00:01:01",
        "02:00:00:00:02:01",
    )
    assert s2c.upstream.capture == "router-right" and s2c.summary.endswith("TTL 64 -> 63")
    assert json.loads(json.dumps(m.to_dict()))["client_to_server"]["macs_rewritten"] is True
    # A different ISN on the same 4-tuple is another connection.
    again = wire(server_mac=ROUTER_LEFT)
    tcp_handshake(again, 4242, 5000)
    c = tcp_connections(read_packets(again.write(tmp_path / "again.pcap")))
    assert match_connections(c, b) == []


def test_pcapng_is_read_too(
    wire: WireFactory, tcp_handshake: Handshake, make_link_frame: LinkFramer, tmp_path: Path
) -> None:
    w = wire()
    exchange(w, tcp_handshake)
    path = tmp_path / "c.pcapng"
    with path.open("wb") as f:
        writer = dpkt.pcapng.Writer(f, linktype=LINKTYPE_ETHERNET)
        for fr in w.frames:
            writer.writepkt(make_link_frame(fr, LINKTYPE_ETHERNET), ts=fr.time)
    ok, why = pcap_ok(path)
    assert ok and why.startswith("pcapng, Ethernet") and "8 frames" in why, why
    conn = tcp_connections(read_packets(path))[0]
    assert conn.handshake.ok and conn.close.kind == "three-way"
    assert abs(conn.start_time - w.frames[0].time) < 1e-5


def test_analyze_capture_bundles_tcp_and_udp(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    from lab.evidence.analysis import analyze_capture

    w = wire()
    exchange(w, tcp_handshake)
    w.udp("c", b"dgram")
    result = analyze_capture(w.write(tmp_path / "c.pcap"))
    assert result.ok and result.link_type == 1 and result.ip_packets == 9
    assert [c.close.kind for c in result.tcp] == ["three-way"]
    assert [f.sizes for f in result.udp] == [(5,)]
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["tcp"][0]["segments"][4]["payload"] == "爱\n"
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00" * 100)
    bad = analyze_capture(junk)
    assert not bad.ok and bad.tcp == () and "not a pcap" in bad.description
