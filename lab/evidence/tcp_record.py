"""One TCP connection's record (:class:`lab.evidence.records.TcpRecord`) from the
sighting it is built from: the handshake, the close, the window events and a timeline,
and the segments kept of it (all of a short connection; the first and last of a long
one, with the segments in between that matter)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lab.evidence.analysis import TcpConnection
from lab.evidence.analysis.tcp import Segment, WindowEvent
from lab.evidence.records import (
    CloseRecord,
    EndRecord,
    FlagSides,
    HandshakeRecord,
    IntSides,
    MaybeIntSides,
    PathRecord,
    SegmentOptions,
    SegmentRecord,
    TcpRecord,
    TimelineRecord,
    WindowEventRecord,
)
from lab.evidence.tcp_trace import trace_of

# A record keeps every segment of a short connection; a long one keeps its first and last
# segments (the handshake and the close), and says how many were left out in between.
SEGMENTS_HEAD = 40
SEGMENTS_TAIL = 24
# Bytes of payload shown per segment: enough for one request or reply line.
PAYLOAD_PREVIEW = 64
# Segments kept from the middle of a long connection because they matter (zero windows,
# probes, window updates, retransmissions, resets, with the segment before each).
KEY_SEGMENTS = 60
# Window events listed per connection, and points of a window-over-time series.
WINDOW_EVENTS = 200
WINDOW_POINTS = 300


@dataclass(frozen=True)
class Names:
    """Who a connection is between, by the topology: None where it does not say."""

    client_node: str | None
    server_node: str | None
    service: str | None
    scenario: str | None


@dataclass(frozen=True)
class Seen:
    """Where a connection was captured: every capture, the one the record is built from,
    and what a hop changed when two networks saw it."""

    seen_in: list[str]
    evidence: str
    path: PathRecord | None


def tcp_record(ident: str, conn: TcpConnection, names: Names, seen: Seen) -> TcpRecord:
    """One connection's record, from the sighting ``seen.evidence``."""
    who: dict[str, str] = {
        "client": names.client_node or conn.client.ip,
        "server": names.server_node or conn.server.ip,
    }
    segments, omitted = _segments(conn)
    return TcpRecord(
        id=ident,
        protocol="tcp",
        client=EndRecord(names.client_node, conn.client.ip, conn.client.port),
        server=EndRecord(names.server_node, conn.server.ip, conn.server.port),
        service=names.service,
        scenario=names.scenario,
        handshake=_handshake(conn),
        close=_close(conn, who),
        bytes=IntSides(conn.client_bytes, conn.server_bytes),
        originals=conn.originals,
        retransmissions=len(conn.retransmissions),
        fast_retransmissions=len(conn.retransmissions_of("fast")),
        spurious_retransmissions=len(conn.retransmissions_of("spurious")),
        zero_windows=len(conn.zero_windows),
        zero_window_probes=len(conn.zero_window_probes),
        window_updates=len(conn.window_updates),
        syn_retransmissions=conn.handshake.syn_retransmissions,
        window_events=_events(conn),
        window_series=_window_series(conn),
        timeline=_timeline(conn),
        start=conn.start_time,
        duration=round(conn.duration, 6),
        seen_in=seen.seen_in,
        evidence=seen.evidence,
        path=seen.path,
        segment_count=len(conn.segments),
        segments_omitted=omitted,
        segments=segments,
        trace=trace_of(conn),
    )


def _preview(payload: bytes) -> str:
    text = payload[:PAYLOAD_PREVIEW].decode("utf-8", errors="backslashreplace")
    return text + ("..." if len(payload) > PAYLOAD_PREVIEW else "")


def _segment(seg: Segment, start: float, pos: int) -> SegmentRecord:
    opts = seg.options
    options = SegmentOptions(
        mss=opts.mss,
        wscale=opts.wscale,
        sack_perm=True if opts.sack_permitted else None,
        ts=list(opts.timestamp) if opts.timestamp is not None else None,
    )
    return SegmentRecord(
        index=seg.index,
        t=round(seg.time - start, 6),
        sender=seg.sender,
        flags=list(seg.flags),
        seq=seg.relative_seq,
        ack=seg.relative_ack,
        len=seg.payload_len,
        win=seg.window,
        win_bytes=seg.window_bytes,
        options=options,
        ttl=seg.ttl,
        retransmission=seg.retransmission,
        payload=_preview(seg.payload),
        pos=pos,
    )


def _key_positions(conn: TcpConnection) -> set[int]:
    """Positions (in ``conn.segments``) of the segments a long connection must keep
    whatever their place: zero windows, probes, window updates, retransmissions and
    resets, each with the segment before it, at most :data:`KEY_SEGMENTS` of them."""
    wanted = {e.index for e in _window_events(conn)}
    wanted |= {r.index for r in conn.retransmissions}
    keep: set[int] = set()
    for pos, seg in enumerate(conn.segments):
        if seg.index in wanted or seg.has("RST"):
            keep |= {pos - 1, pos} if pos else {pos}
        if len(keep) >= KEY_SEGMENTS:
            break
    return keep


def _segments(conn: TcpConnection) -> tuple[list[SegmentRecord], int]:
    """The kept segments, each with ``pos``, its place among all the connection's
    segments (a jump in ``pos`` is where segments were left out), and how many were."""
    segs = conn.segments
    n = len(segs)
    if n <= SEGMENTS_HEAD + SEGMENTS_TAIL:
        positions = list(range(n))
    else:
        head_tail = set(range(SEGMENTS_HEAD)) | set(range(n - SEGMENTS_TAIL, n))
        positions = _close_gaps(sorted(head_tail | _key_positions(conn)))
    out = [_segment(segs[pos], conn.start_time, pos) for pos in positions]
    return out, n - len(positions)


def _close_gaps(positions: list[int], small: int = 2) -> list[int]:
    """Positions with gaps of up to ``small`` segments filled in: an elision mark would
    take as much room as the segments it hides."""
    out: list[int] = []
    for pos in positions:
        if out and 1 < pos - out[-1] <= small + 1:
            out += range(out[-1] + 1, pos)
        out.append(pos)
    return out


def _window_events(conn: TcpConnection) -> list[WindowEvent]:
    return sorted(
        [*conn.zero_windows, *conn.zero_window_probes, *conn.window_updates],
        key=lambda e: (e.index, e.kind),
    )


def _events(conn: TcpConnection) -> list[WindowEventRecord]:
    """Zero windows, zero-window probes and window updates in capture order (at most
    :data:`WINDOW_EVENTS`), times relative to the connection's first segment."""
    return [
        WindowEventRecord(
            kind=e.kind,
            index=e.index,
            t=round(e.time - conn.start_time, 6),
            sender=e.sender,
            win_bytes=e.window_bytes,
            previous_win_bytes=e.previous_window_bytes,
        )
        for e in _window_events(conn)[:WINDOW_EVENTS]
    ]


def _window_series(conn: TcpConnection) -> dict[str, list[list[float]]]:
    """For each side that advertised a zero window: ``[t, window bytes]`` at each change
    of its advertised window, for the window-over-time chart. Thinned to at most
    :data:`WINDOW_POINTS` points, keeping every zero and the last point."""
    closed = {e.sender for e in conn.zero_windows}
    out: dict[str, list[list[float]]] = {}
    for side in sorted(closed):
        points: list[list[float]] = []
        for seg in conn.segments:
            if seg.sender != side or seg.has("RST") or seg.window_bytes is None:
                continue
            if not points or points[-1][1] != seg.window_bytes:
                points.append([round(seg.time - conn.start_time, 6), seg.window_bytes])
        if len(points) > WINDOW_POINTS:
            step = len(points) / WINDOW_POINTS
            picked = {int(i * step) for i in range(WINDOW_POINTS)} | {len(points) - 1}
            picked |= {i for i, p in enumerate(points) if p[1] == 0}
            points = [p for i, p in enumerate(points) if i in picked]
        out[side] = points
    return out


def _timeline(conn: TcpConnection) -> TimelineRecord:
    """When the connection reached each stage, in seconds after its first segment: every
    SYN the client sent (more than one: the SYN was retransmitted), the handshake's end,
    the server's first data (its first reply), each side's first FIN, the first RST and
    the last segment. None where the stage was not seen."""
    start = conn.start_time

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - start, 6)

    syns = [s.time for s in conn.segments if s.sender == "client" and s.flags == ("SYN",)]
    reply = next((s.time for s in conn.segments if s.sender == "server" and s.payload_len), None)
    at = {s.index: s.time for s in conn.segments}
    rst = next((s.time for s in conn.segments if s.has("RST")), None)
    cl = conn.close
    return TimelineRecord(
        syns=[round(t - start, 6) for t in syns],
        handshake_done=rel(conn.handshake.ack_time) if conn.handshake.ok else None,
        first_reply=rel(reply),
        client_fin=rel(at.get(cl.client_fin_index)) if cl.client_fin_index else None,
        server_fin=rel(at.get(cl.server_fin_index)) if cl.server_fin_index else None,
        rst=rel(rst),
        end=rel(conn.end_time),
    )


def _handshake(conn: TcpConnection) -> HandshakeRecord:
    hs = conn.handshake
    return HandshakeRecord(
        ok=hs.ok,
        reason=hs.reason,
        client_isn=hs.client_isn,
        server_isn=hs.server_isn,
        mss=MaybeIntSides(hs.client_mss, hs.server_mss),
        wscale=MaybeIntSides(hs.client_wscale, hs.server_wscale),
        windows=MaybeIntSides(hs.client_window, hs.server_window),
        window_scaling=hs.window_scaling,
        sack_permitted=FlagSides(hs.client_sack_permitted, hs.server_sack_permitted),
        timestamps=FlagSides(hs.client_timestamps, hs.server_timestamps),
        syn_retransmissions=hs.syn_retransmissions,
        rtt=(
            round(hs.ack_time - hs.syn_time, 6)
            if hs.ack_time is not None and hs.syn_time is not None
            else None
        ),
    )


def _close(conn: TcpConnection, who: Mapping[str, str]) -> CloseRecord:
    cl = conn.close
    return CloseRecord(
        kind=cl.kind,
        complete=cl.complete,
        first_fin_by=who[cl.first_fin_by] if cl.first_fin_by else None,
        first_fin_side=cl.first_fin_by,
        reset_by=who[cl.reset_by] if cl.reset_by else None,
        time_wait_by=[who[side] for side in cl.time_wait_by],
        steps=[s.description for s in cl.steps],
    )
