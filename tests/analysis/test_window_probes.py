"""Zero-window probes over crafted captures: Linux's empty probe one below the peer's ack,
the one-byte form, and segments that look alike but are not probes."""

from __future__ import annotations

from pathlib import Path

from lab.evidence.analysis import read_packets, tcp_connections
from lab.evidence.analysis.tcp import TcpConnection
from tests.analysis.conftest import Handshake, Wire, WireFactory


def one_connection(w: Wire, path: Path) -> TcpConnection:
    conns = tcp_connections(read_packets(w.write(path)))
    assert len(conns) == 1
    return conns[0]


def _closed_window(w: Wire, tcp_handshake: Handshake) -> None:
    """The server sends 1000 bytes; the client acknowledges them with window 0."""
    tcp_handshake(w, 1000, 5000)
    w.tcp("s", "PA", 5001, 1001, b"r" * 1000)
    w.tcp("c", "A", 1001, 6001, win=0)


def test_linux_probe_is_empty_one_below_the_ack(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    _closed_window(w, tcp_handshake)
    w.tcp("s", "A", 6000, 1001)  # persist timer: seq = SND.UNA - 1, no data
    w.tcp("c", "A", 1001, 6001, win=0)  # the answer: still closed
    w.tcp("s", "A", 6000, 1001)  # backed-off second probe
    w.tcp("c", "A", 1001, 6001, win=40)  # window update: reopened
    w.tcp("s", "PA", 6001, 1001, b"s" * 100)
    conn = one_connection(w, tmp_path / "p.pcap")
    probes = conn.zero_window_probes
    assert [(p.kind, p.sender) for p in probes] == [("zero-window-probe", "server")] * 2
    segs = {s.index: s for s in conn.segments}
    assert all(
        segs[p.index].relative_seq == 1000 and segs[p.index].payload_len == 0 for p in probes
    )
    assert probes[0].previous_window_bytes == 0
    assert [e.sender for e in conn.zero_windows] == ["client", "client"]
    assert [(u.sender, u.window) for u in conn.window_updates] == [("client", 40)]
    assert not any(s.retransmission for s in conn.segments)


def test_one_byte_probe_at_the_ack(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    _closed_window(w, tcp_handshake)
    w.tcp("s", "PA", 6001, 1001, b"s")
    conn = one_connection(w, tmp_path / "p.pcap")
    assert [(p.sender, p.index) for p in conn.zero_window_probes] == [
        ("server", conn.segments[-1].index)
    ]


def test_no_probe_while_the_window_is_open(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("s", "PA", 5001, 1001, b"r" * 1000)
    w.tcp("c", "A", 1001, 6001, win=300)
    w.tcp("s", "A", 6000, 1001)  # same shape as a probe, but the window is open: keep-alive
    w.tcp("s", "PA", 6001, 1001, b"s")
    assert one_connection(w, tmp_path / "p.pcap").zero_window_probes == ()


def test_data_resent_at_the_ack_into_a_closed_window_is_a_probe(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    # The window closed with data in flight, dropped by the receiver: the sender's
    # retransmission timer re-sends it, and each copy elicits the window like a probe.
    w = wire()
    tcp_handshake(w, 1000, 5000)
    w.tcp("s", "PA", 5001, 1001, b"r" * 1000)
    w.tcp("s", "PA", 6001, 1001, b"t" * 500)
    w.tcp("c", "A", 1001, 6001, win=0)  # the second segment found no room
    again = w.tcp("s", "PA", 6001, 1001, b"t" * 500)
    conn = one_connection(w, tmp_path / "p.pcap")
    frames = [f.ip.id for f in w.frames]
    assert [p.index for p in conn.zero_window_probes] == [frames.index(again.ip.id) + 1]
    assert conn.segments[-1].retransmission


def test_segments_that_do_not_probe_a_closed_window(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    w = wire()
    _closed_window(w, tcp_handshake)
    w.tcp("s", "PA", 6101, 1001, b"s" * 500)  # beyond the ack: not at the window's edge
    w.tcp("s", "A", 5990, 1001)  # empty, but not one below the ack
    w.tcp("s", "FA", 6001, 1001)  # a FIN
    w.tcp("s", "R", 6000, 0)  # a RST
    assert one_connection(w, tmp_path / "p.pcap").zero_window_probes == ()
