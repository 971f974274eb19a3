"""A connection's time-sequence graph points (:class:`TraceRecord`): the data one side
sent against time, and its peer's ACKs and window edge, as Stevens and tcptrace draw them."""

from __future__ import annotations

from lab.evidence.analysis import TcpConnection
from lab.evidence.analysis.tcp_model import other_side
from lab.evidence.records import TraceRecord

TRACE_SEGMENTS = 1500  # data segments drawn at most; every retransmission is kept
TRACE_ACKS = 1500


def _thin(points: list[list[float]], most: int, keep: set[int]) -> list[list[float]]:
    if len(points) <= most:
        return points
    step = len(points) / most
    picked = {int(i * step) for i in range(most)} | {len(points) - 1} | keep
    return [p for i, p in enumerate(points) if i in picked]


def trace_of(conn: TcpConnection) -> TraceRecord | None:
    """The graph of the side that sent the most data; None when neither sent any."""
    if not conn.data_segments:
        return None
    sender = "client" if conn.client_bytes >= conn.server_bytes else "server"
    start = conn.start_time
    kinds = {r.index: 2 if r.kind == "spurious" else 1 for r in conn.retransmissions}
    segments: list[list[float]] = []
    for s in conn.data_segments:
        if s.sender == sender:
            end = s.relative_seq + s.payload_len
            segments.append([round(s.time - start, 6), s.relative_seq, end, kinds.get(s.index, 0)])
    acks: list[list[float]] = []
    for s in conn.segments:
        if s.sender != other_side(sender) or s.relative_ack is None or s.has("RST"):
            continue
        edge = s.relative_ack + (s.window_bytes if s.window_bytes is not None else s.window)
        if not acks or acks[-1][1:] != [s.relative_ack, edge]:
            acks.append([round(s.time - start, 6), s.relative_ack, edge])
    keep = {i for i, p in enumerate(segments) if p[3]}
    thinned = len(segments) > TRACE_SEGMENTS or len(acks) > TRACE_ACKS
    return TraceRecord(
        sender,
        _thin(segments, TRACE_SEGMENTS, keep),
        _thin(acks, TRACE_ACKS, set()),
        thinned,
    )
