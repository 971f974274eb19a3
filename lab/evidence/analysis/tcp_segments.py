"""A connection's segments in order, with relative numbers, retransmissions and window events."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lab.evidence.analysis.common import Endpoint
from lab.evidence.analysis.packet import Packet, TcpOptions
from lab.evidence.analysis.tcp_model import (
    CLIENT,
    SEQ_MOD,
    SERVER,
    Handshake,
    Retransmission,
    Segment,
    WindowEvent,
    other_side,
)


@dataclass
class _SideState:
    """What one sender has done so far (mutable, used while walking the packets)."""

    base: int | None = None
    max_end: int = 0
    sent_at: dict[int, int] = field(default_factory=dict)
    last: Segment | None = None
    bytes: int = 0
    # What the peer has told this sender: its highest ACK (in this sender's numbers), how
    # many duplicates of it followed, and when each sequence number was last sent.
    acked: int = 0
    dup_acks: int = 0
    sends: dict[int, tuple[int, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    """A connection's segments and what was found walking them."""

    segments: list[Segment]
    retransmissions: list[Retransmission]
    zero_windows: list[WindowEvent]
    window_updates: list[WindowEvent]
    client_bytes: int
    server_bytes: int


def segments_of(group: list[Packet], client: Endpoint, hs: Handshake) -> Stream:
    """Walk a connection's packets in order, each sender's progress kept as it goes."""
    sides = {CLIENT: _SideState(base=hs.client_isn), SERVER: _SideState(base=hs.server_isn)}
    shifts = _window_shifts(hs)
    out = Stream([], [], [], [], 0, 0)
    for p in group:
        sender = CLIENT if p.src == client else SERVER
        me = sides[sender]
        seg = _segment(p, sender, me, sides[other_side(sender)], shifts[sender])
        consumed = p.payload_len + p.has("SYN") + p.has("FIN")
        if seg.retransmission:
            out.retransmissions.append(_retransmission(seg, me, consumed))
        elif consumed > 0:
            me.sent_at.setdefault(seg.relative_seq, p.index)
        if consumed > 0:
            count = me.sends.get(seg.relative_seq, (0, 0.0))[0]
            me.sends[seg.relative_seq] = (count + 1, p.time)
        _note_ack(seg, me.last, sides[other_side(sender)])
        _window_events(seg, me, out.zero_windows, out.window_updates)
        _advance(me, p, seg.relative_seq, consumed)
        me.last = seg
        out.segments.append(seg)
    return replace(out, client_bytes=sides[CLIENT].bytes, server_bytes=sides[SERVER].bytes)


def _retransmission(seg: Segment, me: _SideState, consumed: int) -> Retransmission:
    entry = me.sends.get(seg.relative_seq)
    count, last = entry if entry is not None else (1, None)
    # Wireshark's rule: only a segment carrying data is spurious. A FIN resent because
    # the peer's ACK of it was lost is an ordinary timeout retransmission there too.
    if seg.payload_len > 0 and me.acked >= seg.relative_seq + consumed:
        kind = "spurious"
    elif me.dup_acks >= 3 and me.acked == seg.relative_seq:
        kind = "fast"
    else:
        kind = "timeout"
    return Retransmission(
        seg.index,
        seg.time,
        seg.sender,
        seg.relative_seq,
        seg.payload_len,
        seg.flags,
        me.sent_at.get(seg.relative_seq),
        kind=kind,
        attempt=count + 1,
        since_previous=None if last is None else round(seg.time - last, 6),
        duplicate_acks=me.dup_acks if me.acked == seg.relative_seq else 0,
    )


def _note_ack(seg: Segment, prev: Segment | None, peer: _SideState) -> None:
    """What ``seg`` tells its peer about the peer's own data: a new ACK, or a duplicate
    (no data, SYN, FIN or RST, the same ACK and window as before: Wireshark's test)."""
    if seg.relative_ack is None or seg.has("RST"):
        return
    if seg.relative_ack > peer.acked:
        peer.acked, peer.dup_acks = seg.relative_ack, 0
    elif (
        seg.relative_ack == peer.acked
        and seg.seq_len == 0
        and seg.payload_len == 0
        and (prev is None or prev.window == seg.window)
    ):
        peer.dup_acks += 1


def _window_shifts(hs: Handshake) -> dict[str, int | None]:
    """Each sender's window scale shift; None when no SYN-ACK was seen (scale unknown)."""
    if hs.syn_ack_index is None:
        return {CLIENT: None, SERVER: None}
    return {
        CLIENT: hs.client_wscale if hs.window_scaling and hs.client_wscale else 0,
        SERVER: hs.server_wscale if hs.window_scaling and hs.server_wscale else 0,
    }


def _segment(
    p: Packet, sender: str, me: _SideState, peer: _SideState, shift: int | None
) -> Segment:
    seq, ack, win = p.seq or 0, p.ack or 0, p.window or 0
    if me.base is None:
        me.base = seq
    rel_seq = (seq - me.base) % SEQ_MOD
    rel_ack = None
    if p.has("ACK"):
        if peer.base is None:
            peer.base = ack  # nothing seen from the peer yet: its next seq is "0"
        rel_ack = (ack - peer.base) % SEQ_MOD
    if p.has("SYN"):
        win_bytes: int | None = win
    else:
        win_bytes = None if shift is None else win << shift
    consumed = p.payload_len + p.has("SYN") + p.has("FIN")
    return Segment(
        index=p.index,
        time=p.time,
        sender=sender,
        flags=p.flags,
        seq=seq,
        ack=ack,
        relative_seq=rel_seq,
        relative_ack=rel_ack,
        payload_len=p.payload_len,
        window=win,
        window_bytes=win_bytes,
        options=p.options or TcpOptions(),
        ttl=p.ttl,
        ip_id=p.ip_id,
        src_mac=p.src_mac,
        dst_mac=p.dst_mac,
        retransmission=consumed > 0 and rel_seq < me.max_end,
        payload=p.payload,
    )


def _advance(me: _SideState, p: Packet, rel_seq: int, consumed: int) -> None:
    """Count the new bytes a segment carried and how far its sender has now sent."""
    if consumed > 0:
        end = rel_seq + consumed
        data_start = rel_seq + p.has("SYN")
        me.bytes += max(0, data_start + p.payload_len - max(me.max_end, data_start))
        me.max_end = max(me.max_end, end)


def _window_events(
    seg: Segment, me: _SideState, zero: list[WindowEvent], updates: list[WindowEvent]
) -> None:
    if seg.has("RST"):
        return
    if seg.window == 0:
        zero.append(WindowEvent("zero-window", seg.index, seg.time, seg.sender, 0, 0))
        return
    prev = me.last
    if (
        prev is not None
        and seg.payload_len == 0
        and not (seg.has("SYN") or seg.has("FIN"))
        and seg.has("ACK")
        and prev.has("ACK")
        and seg.ack == prev.ack
        and seg.relative_seq == me.max_end
        and seg.window != prev.window
    ):
        updates.append(
            WindowEvent(
                "window-update",
                seg.index,
                seg.time,
                seg.sender,
                seg.window,
                seg.window_bytes,
                prev.window_bytes,
            )
        )


def zero_window_probes(segments: list[Segment]) -> list[WindowEvent]:
    """Segments that probe a zero window: sent (no SYN, FIN or RST) while the peer's last
    segment advertised window 0, and either empty with the sequence number one below the
    peer's ack (Linux's persist-timer probe, seq = SND.UNA - 1, which forces an ACK
    carrying the current window; Wireshark calls it a keep-alive) or carrying data from
    the peer's ack on (RFC 1122's probe with data: one byte in Wireshark's definition;
    Linux, when data was still in flight as the window closed, re-sends it on its
    retransmission timer, and these "retransmits become zero probes")."""
    last: dict[str, Segment] = {}
    probes: list[WindowEvent] = []
    for seg in segments:
        peer = last.get(other_side(seg.sender))
        if seg.has("RST"):
            continue
        if (
            peer is not None
            and peer.window == 0
            and peer.relative_ack is not None
            and not (seg.has("SYN") or seg.has("FIN"))
            and (
                (seg.payload_len == 0 and seg.relative_seq == (peer.relative_ack - 1) % SEQ_MOD)
                or (seg.payload_len > 0 and seg.relative_seq == peer.relative_ack)
            )
        ):
            probes.append(
                WindowEvent(
                    "zero-window-probe",
                    seg.index,
                    seg.time,
                    seg.sender,
                    seg.window,
                    seg.window_bytes,
                    peer.window_bytes,
                )
            )
        last[seg.sender] = seg
    return probes
