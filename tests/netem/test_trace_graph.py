"""The time-sequence graph: one bar per data segment, retransmissions and spurious ones
marked, the ACK line and the window edge; its points in summary.json's record."""

from __future__ import annotations

import re

from lab.evidence.analysis.tcp import tcp_connections
from lab.evidence.records import TcpRecord
from lab.evidence.tcp_record import Names, Seen, tcp_record
from lab.report.trace_svg import trace_chart
from tests.netem.test_retransmission_kinds import Wire


def record_of(w: Wire) -> TcpRecord:
    (conn,) = tcp_connections(w.packets)
    return tcp_record("c1", conn, Names("c", "s", "echo", "x"), Seen(["c.pcap"], "c.pcap", None))


def lossy_wire() -> Wire:
    w = Wire()
    w.handshake()
    w.data(0.1, 1)  # lost
    w.data(0.11, 101)
    w.ack(0.12, 1)
    w.data(0.3, 1)  # resent on the timer
    w.ack(0.31, 201)
    w.data(0.5, 101)  # already acknowledged: spurious
    w.ack(0.51, 201)
    return w


def test_the_record_keeps_every_send_and_every_ack() -> None:
    rec = record_of(lossy_wire())
    assert rec.trace is not None and rec.trace.sender == "client"
    assert [p[1:] for p in rec.trace.segments] == [
        [1, 101, 0],
        [101, 201, 0],
        [1, 101, 1],
        [101, 201, 2],
    ]
    # Wire's window is 1000 bytes, unscaled: the edge is the ACK + 1000.
    assert [p[1:] for p in rec.trace.acks] == [[1, 1001], [201, 1201]]
    assert (rec.originals, rec.retransmissions, rec.spurious_retransmissions) == (4, 2, 1)


def test_the_graph_draws_bars_marks_and_both_lines() -> None:
    svg = trace_chart(record_of(lossy_wire()))
    assert svg.count("<line class=ts-seg ") == 2
    assert svg.count("<line class=ts-rt ") == 1 and svg.count(">R</text>") == 1
    assert svg.count("<line class=ts-spur ") == 1 and svg.count(">S</text>") == 1
    assert len(re.findall(r'<path class=ts-ack d="M', svg)) == 1
    assert len(re.findall(r'<path class=ts-win d="M', svg)) == 1
    assert "bytes 1..101" in svg


def test_no_data_no_graph() -> None:
    w = Wire()
    w.handshake()
    assert record_of(w).trace is None
    assert trace_chart(record_of(w)) == ""
