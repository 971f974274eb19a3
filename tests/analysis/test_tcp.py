"""TCP analysis over crafted Ethernet captures: one scenario per close kind and event."""

from __future__ import annotations

import json
from pathlib import Path

from lab.evidence.analysis import read_packets, tcp_connections
from lab.evidence.analysis.tcp import TcpConnection
from tests.analysis.conftest import Handshake, Wire, WireFactory


def one_connection(w: Wire, path: Path) -> TcpConnection:
    conns = tcp_connections(read_packets(w.write(path)))
    assert len(conns) == 1
    return conns[0]


def test_clean_handshake_data_and_four_way_close(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "PA", 1001, 5001, b"hello\n")
    w.tcp("s", "A", 5001, 1007)
    w.tcp("s", "PA", 5001, 1007, b"HELLO\n")
    w.tcp("c", "A", 1007, 5007)
    w.tcp("c", "FA", 1007, 5007)
    w.tcp("s", "A", 5007, 1008)
    w.tcp("s", "FA", 5007, 1008)
    w.tcp("c", "A", 1008, 5008)
    conn = one_connection(w, tmp_path / "c.pcap")

    assert conn.client == ("10.0.1.2", 40000)
    assert conn.server == ("10.0.2.2", 9999)
    hs = conn.handshake
    assert hs.ok, hs.reason
    assert (hs.client_isn, hs.server_isn) == (1000, 5000)
    assert (hs.syn_ack_acknowledges, hs.ack_acknowledges) == (1001, 5001)
    assert (hs.client_mss, hs.server_mss) == (1460, 1400)
    assert (hs.client_wscale, hs.server_wscale) == (7, 7)
    assert hs.window_scaling and hs.client_sack_permitted and hs.server_timestamps
    assert (hs.client_window, hs.server_window) == (64240, 65160)

    data = conn.data_segments
    assert [(s.sender, s.relative_seq, s.relative_ack, s.payload_len) for s in data] == [
        ("client", 1, 1, 6),
        ("server", 1, 7, 6),
    ]
    assert data[0].payload == b"hello\n"
    # After the handshake windows are scaled by the sender's shift (502 << 7).
    assert data[0].window == 502 and data[0].window_bytes == 502 * 128
    # SYN windows are never scaled.
    assert conn.segments[0].window_bytes == 64240
    assert (conn.client_bytes, conn.server_bytes) == (6, 6)

    close = conn.close
    assert close.kind == "four-way"
    assert close.first_fin_by == "client"
    assert close.complete and close.reset_by is None
    assert close.time_wait_by == ("client",)
    idx = [s.index for s in conn.segments]
    assert (close.client_fin_index, close.first_fin_ack_index) == (idx[7], idx[8])
    assert (close.server_fin_index, close.last_ack_index) == (idx[9], idx[10])
    assert [s.description for s in close.steps] == [
        "client FIN",
        "server ACKs the client's FIN",
        "server FIN",
        "client ACKs the server's FIN",
    ]
    assert conn.retransmissions == () and conn.zero_windows == ()
    # The whole result is JSON (payload bytes as text).
    doc = json.loads(json.dumps(conn.to_dict()))
    assert doc["client"] == {"ip": "10.0.1.2", "port": 40000}
    assert doc["segments"][3]["payload"] == "hello\n"
    assert doc["close"]["kind"] == "four-way"


def test_server_closes_first_with_piggybacked_fin_is_three_way(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("s", "FA", 5001, 1001)
    w.tcp("c", "FA", 1001, 5002)  # acks the server's FIN and closes in one segment
    w.tcp("s", "A", 5002, 1002)
    close = one_connection(w, tmp_path / "c.pcap").close
    assert close.kind == "three-way"
    assert close.first_fin_by == "server"
    assert close.complete
    assert close.first_fin_ack_index == close.client_fin_index
    assert close.time_wait_by == ("server",)


def test_fins_crossing_is_simultaneous(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "FA", 1001, 5001)
    w.tcp("s", "FA", 5001, 1001)  # sent before the client's FIN arrived: ack does not cover it
    w.tcp("c", "A", 1002, 5002)
    w.tcp("s", "A", 5002, 1002)
    close = one_connection(w, tmp_path / "c.pcap").close
    assert close.kind == "simultaneous"
    assert close.complete
    assert close.time_wait_by == ("client", "server")


def test_reset(wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "PA", 1001, 5001, b"x" * 10)
    w.tcp("s", "RA", 5001, 1011)
    close = one_connection(w, tmp_path / "c.pcap").close
    assert close.kind == "reset"
    assert close.reset_by == "server"
    assert close.first_fin_by is None and not close.complete
    assert close.time_wait_by == ()


def test_only_one_fin_is_half_open_and_nothing_is_none(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "FA", 1001, 5001)
    w.tcp("s", "A", 5001, 1002)
    assert one_connection(w, tmp_path / "a.pcap").close.kind == "half-open"
    w2 = wire()
    tcp_handshake(w2, 1000, 5000)
    assert one_connection(w2, tmp_path / "b.pcap").close.kind == "none"


def test_retransmission_points_at_the_original(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    original = w.tcp("c", "PA", 1001, 5001, b"a" * 100)
    again = w.tcp("c", "PA", 1001, 5001, b"a" * 100)
    w.tcp("s", "A", 5001, 1101)
    w.tcp("c", "PA", 1101, 5001, b"b" * 50)
    conn = one_connection(w, tmp_path / "c.pcap")
    assert len(conn.retransmissions) == 1
    r = conn.retransmissions[0]
    frames = [f.ip.id for f in w.frames]
    assert r.index == frames.index(again.ip.id) + 1
    assert r.original_index == frames.index(original.ip.id) + 1
    assert (r.sender, r.relative_seq, r.payload_len) == ("client", 1, 100)
    assert [s.retransmission for s in conn.segments].count(True) == 1
    assert conn.client_bytes == 150  # the resent bytes are counted once


def test_zero_window_then_window_update(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "PA", 1001, 5001, b"z" * 1000)
    w.tcp("s", "A", 5001, 2001, win=0)
    w.tcp("s", "A", 5001, 2001, win=300)
    conn = one_connection(w, tmp_path / "c.pcap")
    assert [(e.kind, e.sender, e.window) for e in conn.zero_windows] == [
        ("zero-window", "server", 0)
    ]
    assert len(conn.window_updates) == 1
    up = conn.window_updates[0]
    assert (up.kind, up.sender, up.window) == ("window-update", "server", 300)
    assert (up.window_bytes, up.previous_window_bytes) == (300 * 128, 0)
    assert up.index > conn.zero_windows[0].index


def test_wrong_syn_ack_number_fails_the_handshake(wire: WireFactory, tmp_path: Path) -> None:
    w = wire()
    w.tcp("c", "S", 1000, 0, win=64240)
    w.tcp("s", "SA", 5000, 1000, win=65160)  # should acknowledge 1001
    w.tcp("c", "A", 1001, 5001)
    hs = one_connection(w, tmp_path / "c.pcap").handshake
    assert not hs.ok
    assert "expected client ISN + 1 = 1001" in hs.reason
    assert hs.syn_ack_acknowledges == 1000
    # No options offered: no MSS, no scaling, windows reported raw.
    assert hs.client_mss is None and not hs.window_scaling


def test_ack_of_syn_ack_is_checked_too(wire: WireFactory, tmp_path: Path) -> None:
    w = wire()
    w.tcp("c", "S", 1000, 0)
    w.tcp("s", "SA", 5000, 1001)
    w.tcp("c", "A", 1001, 5000)
    hs = one_connection(w, tmp_path / "c.pcap").handshake
    assert not hs.ok and "expected server ISN + 1 = 5001" in hs.reason


def test_capture_started_mid_connection(wire: WireFactory, tmp_path: Path) -> None:
    w = wire()
    w.tcp("c", "PA", 777, 9000, b"abc")
    w.tcp("s", "A", 9000, 780)
    conn = one_connection(w, tmp_path / "c.pcap")
    assert not conn.handshake_seen and not conn.handshake.ok
    assert conn.client.port == 40000  # the ephemeral (higher) port
    assert [(s.relative_seq, s.relative_ack) for s in conn.segments] == [(0, 0), (0, 3)]
    assert conn.segments[0].window_bytes is None  # scale unknown without the handshake


def test_port_reuse_with_new_isn_is_a_new_connection(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "FA", 1001, 5001)
    w.tcp("s", "FA", 5001, 1002)
    w.tcp("c", "A", 1002, 5002)
    tcp_handshake(w, 90000, 7000)
    conns = tcp_connections(read_packets(w.write(tmp_path / "c.pcap")))
    assert [c.handshake.client_isn for c in conns] == [1000, 90000]
    assert [c.close.kind for c in conns] == ["three-way", "none"]


def test_stream_takes_new_bytes_from_a_repacketised_retransmission(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    # Linux may resend a lost segment merged with the next one: the resend is a
    # retransmission, yet its second half was never on the wire before.
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "PA", 1001, 5001, b"hello\n")
    w.tcp("c", "PA", 1001, 5001, b"hello\nworld\n")
    w.tcp("c", "PA", 1007, 5001, b"world\n")  # a copy of bytes already had adds nothing
    w.tcp("s", "A", 5001, 1013)
    w.tcp("s", "PA", 5001, 1013, b"HELLO\nWORLD\n")
    conn = one_connection(w, tmp_path / "c.pcap")

    assert [s.retransmission for s in conn.data_segments[:3]] == [False, True, True]
    assert conn.stream("client") == b"hello\nworld\n"
    assert conn.stream("server") == b"HELLO\nWORLD\n"


def test_stream_stops_at_bytes_the_capture_never_saw(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("c", "PA", 1001, 5001, b"one\n")
    w.tcp("c", "PA", 1009, 5001, b"three\n")  # bytes 1005..1008 were not captured
    conn = one_connection(w, tmp_path / "c.pcap")

    assert conn.stream("client") == b"one\n"
    assert conn.stream("server") == b""
