"""TCP connections reconstructed from packets: handshake, segments, close, retransmissions,
zero-window, zero-window-probe and window-update events.

The client is the side that sent the SYN (without ACK). When the capture began after the
handshake, the client is the receiver of a SYN-ACK, else the side with the higher port (the
ephemeral one). Sequence and acknowledgement numbers are made relative to each side's ISN
(its SYN's seq) or, without a SYN, to the first seq seen from that side, as Wireshark does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from lab.evidence.analysis.common import Endpoint, ToDict
from lab.evidence.analysis.pcap import Packet, TcpOptions, unique_packets

CLIENT = "client"
SERVER = "server"

CLOSE_KINDS = ("four-way", "three-way", "simultaneous", "reset", "half-open", "none")

_MOD = 1 << 32


def _other(side: str) -> str:
    return SERVER if side == CLIENT else CLIENT


@dataclass(frozen=True)
class Handshake(ToDict):
    """The opening exchange. ``ok`` means SYN, SYN-ACK and ACK were all seen and every
    acknowledgement number is the peer's ISN + 1 (the SYN consumes one sequence number);
    ``reason`` says what held or which check failed. ``*_window`` are the raw windows of the
    SYN and SYN-ACK (never scaled); ``window_scaling`` is true when both sides offered it."""

    ok: bool
    reason: str
    client_isn: int | None = None
    server_isn: int | None = None
    syn_index: int | None = None
    syn_ack_index: int | None = None
    ack_index: int | None = None
    syn_time: float | None = None
    syn_ack_time: float | None = None
    ack_time: float | None = None
    syn_ack_acknowledges: int | None = None
    ack_acknowledges: int | None = None
    client_mss: int | None = None
    server_mss: int | None = None
    client_wscale: int | None = None
    server_wscale: int | None = None
    client_sack_permitted: bool = False
    server_sack_permitted: bool = False
    client_timestamps: bool = False
    server_timestamps: bool = False
    client_window: int | None = None
    server_window: int | None = None
    window_scaling: bool = False
    syn_retransmissions: int = 0


@dataclass(frozen=True)
class Segment(ToDict):
    """One TCP segment of a connection. ``relative_ack`` is None without the ACK flag.
    ``window_bytes`` is the advertised window in bytes (raw << the sender's scale), None
    when the handshake was not captured and the scale is therefore unknown.
    ``retransmission`` marks a segment re-sending sequence space already sent."""

    index: int
    time: float
    sender: str
    flags: tuple[str, ...]
    seq: int
    ack: int
    relative_seq: int
    relative_ack: int | None
    payload_len: int
    window: int
    window_bytes: int | None
    options: TcpOptions
    ttl: int
    ip_id: int
    src_mac: str | None
    dst_mac: str | None
    retransmission: bool = False
    payload: bytes = b""

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def seq_len(self) -> int:
        """Sequence space consumed: payload, plus one each for SYN and FIN."""
        return self.payload_len + self.has("SYN") + self.has("FIN")


@dataclass(frozen=True)
class Retransmission(ToDict):
    index: int
    time: float
    sender: str
    relative_seq: int
    payload_len: int
    flags: tuple[str, ...]
    original_index: int | None


@dataclass(frozen=True)
class WindowEvent(ToDict):
    """``kind`` is "zero-window" (a segment advertising window 0), "window-update" (a
    segment with no data, SYN, FIN or RST, the same ack as the sender's previous one and a
    new non-zero window, as Wireshark defines it) or "zero-window-probe" (a segment sent
    while the peer's last advertised window is 0, see ``_zero_window_probes``; its window
    fields are the probe's own)."""

    kind: str
    index: int
    time: float
    sender: str
    window: int
    window_bytes: int | None
    previous_window_bytes: int | None = None


@dataclass(frozen=True)
class CloseStep(ToDict):
    """A segment that matters to the close: a FIN, a RST, or the first ACK of a FIN."""

    index: int
    time: float
    sender: str
    flags: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Close(ToDict):
    """How the connection ended.

    ``kind``: "four-way" (FIN, separate ACK, FIN, ACK), "three-way" (the second FIN carries
    the ACK of the first: FIN, FIN+ACK, ACK), "simultaneous" (each side's FIN sent before it
    acknowledged the other's), "reset" (a RST before both FINs were acknowledged),
    "half-open" (only one side's FIN was seen: the other direction is still open) or "none".
    ``time_wait_by`` lists the side(s) that end in TIME_WAIT: the first FIN's sender, both
    in a simultaneous close, none after a reset.
    """

    kind: str
    first_fin_by: str | None = None
    reset_by: str | None = None
    client_fin_index: int | None = None
    server_fin_index: int | None = None
    first_fin_ack_index: int | None = None
    last_ack_index: int | None = None
    complete: bool = False
    time_wait_by: tuple[str, ...] = ()
    steps: tuple[CloseStep, ...] = ()


@dataclass(frozen=True)
class TcpConnection(ToDict):
    client: Endpoint
    server: Endpoint
    handshake: Handshake
    segments: tuple[Segment, ...]
    close: Close
    retransmissions: tuple[Retransmission, ...] = ()
    zero_windows: tuple[WindowEvent, ...] = ()
    window_updates: tuple[WindowEvent, ...] = ()
    zero_window_probes: tuple[WindowEvent, ...] = ()
    client_bytes: int = 0
    server_bytes: int = 0
    start_time: float = 0.0
    end_time: float = 0.0
    handshake_seen: bool = field(default=False)

    @property
    def four_tuple(self) -> tuple[str, int, str, int]:
        return (self.client.ip, self.client.port, self.server.ip, self.server.port)

    @property
    def data_segments(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.payload_len > 0)

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time


# -- grouping packets into connections -------------------------------------------------------


def _canonical(p: Packet) -> tuple[Endpoint, Endpoint]:
    a, b = p.src, p.dst
    return (a, b) if a <= b else (b, a)


def _group(packets: Iterable[Packet]) -> list[list[Packet]]:
    """Packets per connection, in order of first packet. A SYN with a new ISN on a 4-tuple
    already used starts a new connection (port reuse after TIME_WAIT)."""
    current: dict[tuple[Endpoint, Endpoint], list[Packet]] = {}
    groups: list[list[Packet]] = []
    for p in packets:
        if p.protocol != "tcp":
            continue
        key = _canonical(p)
        group = current.get(key)
        if group is not None and p.has("SYN") and not p.has("ACK"):
            syns = [q for q in group if q.has("SYN") and not q.has("ACK")]
            ended = any(q.has("FIN") or q.has("RST") for q in group)
            if (syns and syns[0].seq != p.seq) or (not syns and ended):
                group = None
        if group is None:
            group = []
            groups.append(group)
            current[key] = group
        group.append(p)
    return groups


def _roles(group: list[Packet]) -> tuple[Endpoint, Endpoint]:
    for p in group:
        if p.has("SYN") and not p.has("ACK"):
            return p.src, p.dst
    for p in group:
        if p.has("SYN") and p.has("ACK"):
            return p.dst, p.src
    first = group[0]
    if first.src.port != first.dst.port:
        return (first.src, first.dst) if first.src.port > first.dst.port else (first.dst, first.src)
    return first.src, first.dst


# -- handshake ---------------------------------------------------------------------------------


def _handshake(group: list[Packet], client: Endpoint) -> Handshake:
    syns = [p for p in group if p.src == client and p.has("SYN") and not p.has("ACK")]
    if not syns:
        return Handshake(ok=False, reason="no SYN captured (capture began after the handshake)")
    syn = syns[0]
    isn_c = syn.seq or 0
    retrans = sum(1 for p in syns[1:] if p.seq == syn.seq)
    opts_c = syn.options or TcpOptions()
    base = Handshake(
        ok=False,
        reason="",
        client_isn=isn_c,
        syn_index=syn.index,
        syn_time=syn.time,
        client_mss=opts_c.mss,
        client_wscale=opts_c.wscale,
        client_sack_permitted=opts_c.sack_permitted,
        client_timestamps=opts_c.timestamp is not None,
        client_window=syn.window,
        syn_retransmissions=retrans,
    )
    synacks = [p for p in group if p.src != client and p.has("SYN") and p.has("ACK")]
    if not synacks:
        rst = any(p.src != client and p.has("RST") for p in group)
        why = "the server answered the SYN with RST (nothing listening)" if rst else "no SYN-ACK"
        return _replace(base, reason=why)
    sa = synacks[0]
    opts_s = sa.options or TcpOptions()
    isn_s = sa.seq or 0
    both_scale = opts_c.wscale is not None and opts_s.wscale is not None
    hs = _replace(
        base,
        server_isn=isn_s,
        syn_ack_index=sa.index,
        syn_ack_time=sa.time,
        syn_ack_acknowledges=sa.ack,
        server_mss=opts_s.mss,
        server_wscale=opts_s.wscale,
        server_sack_permitted=opts_s.sack_permitted,
        server_timestamps=opts_s.timestamp is not None,
        server_window=sa.window,
        window_scaling=both_scale,
    )
    if sa.ack != (isn_c + 1) % _MOD:
        return _replace(
            hs, reason=f"SYN-ACK acknowledges {sa.ack}, expected client ISN + 1 = {isn_c + 1}"
        )
    acks = [
        p
        for p in group
        if p.src == client and p.index > sa.index and p.has("ACK") and not p.has("SYN")
    ]
    if not acks:
        return _replace(hs, reason="no ACK of the SYN-ACK")
    ack = acks[0]
    hs = _replace(hs, ack_index=ack.index, ack_time=ack.time, ack_acknowledges=ack.ack)
    if ack.has("RST"):
        return _replace(hs, reason="the client answered the SYN-ACK with RST")
    if ack.ack != (isn_s + 1) % _MOD:
        return _replace(
            hs, reason=f"ACK acknowledges {ack.ack}, expected server ISN + 1 = {isn_s + 1}"
        )
    if ack.seq != (isn_c + 1) % _MOD:
        return _replace(hs, reason=f"ACK has seq {ack.seq}, expected client ISN + 1")
    return _replace(hs, ok=True, reason="SYN, SYN-ACK, ACK; each ack = peer's ISN + 1")


def _replace(hs: Handshake, **changes: object) -> Handshake:
    return replace(hs, **changes)  # type: ignore[arg-type]


# -- segments, retransmissions, windows --------------------------------------------------------


@dataclass
class _SideState:
    """What one sender has done so far (mutable, used while walking the packets)."""

    base: int | None = None
    max_end: int = 0
    sent_at: dict[int, int] = field(default_factory=dict)
    last: Segment | None = None
    bytes: int = 0


def _segments(
    group: list[Packet], client: Endpoint, hs: Handshake
) -> tuple[list[Segment], list[Retransmission], list[WindowEvent], list[WindowEvent], _Sides]:
    sides = {CLIENT: _SideState(base=hs.client_isn), SERVER: _SideState(base=hs.server_isn)}
    scale_known = hs.syn_ack_index is not None
    shift = {
        CLIENT: hs.client_wscale if hs.window_scaling and hs.client_wscale else 0,
        SERVER: hs.server_wscale if hs.window_scaling and hs.server_wscale else 0,
    }
    segments: list[Segment] = []
    retrans: list[Retransmission] = []
    zero: list[WindowEvent] = []
    updates: list[WindowEvent] = []
    for p in group:
        sender = CLIENT if p.src == client else SERVER
        me, peer = sides[sender], sides[_other(sender)]
        seq, ack, win = p.seq or 0, p.ack or 0, p.window or 0
        if me.base is None:
            me.base = seq
        rel_seq = (seq - me.base) % _MOD
        rel_ack = None
        if p.has("ACK"):
            if peer.base is None:
                peer.base = ack  # nothing seen from the peer yet: its next seq is "0"
            rel_ack = (ack - peer.base) % _MOD
        if p.has("SYN"):
            win_bytes: int | None = win
        else:
            win_bytes = win << shift[sender] if scale_known else None
        consumed = p.payload_len + p.has("SYN") + p.has("FIN")
        is_retrans = consumed > 0 and rel_seq < me.max_end
        seg = Segment(
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
            retransmission=is_retrans,
            payload=p.payload,
        )
        if is_retrans:
            retrans.append(
                Retransmission(
                    p.index,
                    p.time,
                    sender,
                    rel_seq,
                    p.payload_len,
                    p.flags,
                    me.sent_at.get(rel_seq),
                )
            )
        elif consumed > 0:
            me.sent_at.setdefault(rel_seq, p.index)
        _window_events(seg, me, zero, updates)
        if consumed > 0:
            end = rel_seq + consumed
            data_start = rel_seq + p.has("SYN")
            me.bytes += max(0, data_start + p.payload_len - max(me.max_end, data_start))
            me.max_end = max(me.max_end, end)
        me.last = seg
        segments.append(seg)
    return segments, retrans, zero, updates, _Sides(sides[CLIENT].bytes, sides[SERVER].bytes)


@dataclass(frozen=True)
class _Sides:
    client_bytes: int
    server_bytes: int


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


def _zero_window_probes(segments: list[Segment]) -> list[WindowEvent]:
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
        peer = last.get(_other(seg.sender))
        if seg.has("RST"):
            continue
        if (
            peer is not None
            and peer.window == 0
            and peer.relative_ack is not None
            and not (seg.has("SYN") or seg.has("FIN"))
            and (
                (seg.payload_len == 0 and seg.relative_seq == (peer.relative_ack - 1) % _MOD)
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


# -- close ---------------------------------------------------------------------------------------


def _close(segments: list[Segment]) -> Close:
    fins: dict[str, Segment] = {}
    for s in segments:
        if s.has("FIN") and not s.retransmission and s.sender not in fins:
            fins[s.sender] = s
    # The ack number that acknowledges each side's FIN (relative to that side's ISN).
    fin_ack = {side: s.relative_seq + s.payload_len + 1 for side, s in fins.items()}
    acked_at: dict[str, Segment] = {}
    for s in segments:
        peer = _other(s.sender)
        if (
            peer in fins
            and peer not in acked_at
            and s.index > fins[peer].index
            and s.relative_ack is not None
            and s.relative_ack >= fin_ack[peer]
        ):
            acked_at[peer] = s
    resets = [s for s in segments if s.has("RST")]
    complete = len(fins) == 2 and len(acked_at) == 2
    completed_at = max(a.index for a in acked_at.values()) if complete else None
    first_rst = resets[0] if resets else None
    steps = _close_steps(segments, fins, acked_at)
    fin_fields: dict[str, object] = {
        "client_fin_index": fins[CLIENT].index if CLIENT in fins else None,
        "server_fin_index": fins[SERVER].index if SERVER in fins else None,
        "complete": complete,
        "reset_by": first_rst.sender if first_rst else None,
        "steps": steps,
    }
    first = min(fins.values(), key=lambda s: s.index) if fins else None
    if first is not None:
        fin_fields["first_fin_by"] = first.sender
        if first.sender in acked_at:
            fin_fields["first_fin_ack_index"] = acked_at[first.sender].index
    if first_rst is not None and (completed_at is None or first_rst.index < completed_at):
        return Close(kind="reset", **fin_fields)  # type: ignore[arg-type]
    if first is None:
        return Close(kind="none", **fin_fields)  # type: ignore[arg-type]
    second_side = _other(first.sender)
    if second_side not in fins:
        return Close(kind="half-open", **fin_fields)  # type: ignore[arg-type]
    second = fins[second_side]
    if complete:
        fin_fields["last_ack_index"] = acked_at[second_side].index
    if second.relative_ack is None or second.relative_ack < fin_ack[first.sender]:
        kind = "simultaneous"
        fin_fields["time_wait_by"] = (CLIENT, SERVER)
    else:
        ack_first = acked_at.get(first.sender)
        kind = (
            "three-way"
            if ack_first is not None and ack_first.index == second.index
            else ("four-way")
        )
        fin_fields["time_wait_by"] = (first.sender,)
    return Close(kind=kind, **fin_fields)  # type: ignore[arg-type]


def _close_steps(
    segments: list[Segment], fins: dict[str, Segment], acked_at: dict[str, Segment]
) -> tuple[CloseStep, ...]:
    ack_indices = {s.index: side for side, s in acked_at.items()}
    steps = []
    for s in segments:
        parts = []
        if s.has("RST"):
            parts.append(f"{s.sender} RST")
        if s.has("FIN"):
            again = " (retransmitted)" if s.retransmission else ""
            parts.append(f"{s.sender} FIN{again}")
        if s.index in ack_indices:
            whose = ack_indices[s.index]
            parts.append(f"{s.sender} ACKs the {whose}'s FIN")
        if parts:
            steps.append(CloseStep(s.index, s.time, s.sender, s.flags, "; ".join(parts)))
    return tuple(steps)


# -- entry point ---------------------------------------------------------------------------------


def tcp_connections(packets: Iterable[Packet]) -> list[TcpConnection]:
    """Every TCP connection in the packets, in order of its first packet. Copies of one
    packet in a cooked ``-i any`` capture are counted once (see ``unique_packets``)."""
    conns = []
    for group in _group(unique_packets([p for p in packets if p.protocol == "tcp"])):
        client, server = _roles(group)
        hs = _handshake(group, client)
        segments, retrans, zero, updates, sides = _segments(group, client, hs)
        conns.append(
            TcpConnection(
                client=client,
                server=server,
                handshake=hs,
                segments=tuple(segments),
                close=_close(segments),
                retransmissions=tuple(retrans),
                zero_windows=tuple(zero),
                window_updates=tuple(updates),
                zero_window_probes=tuple(_zero_window_probes(segments)),
                client_bytes=sides.client_bytes,
                server_bytes=sides.server_bytes,
                start_time=group[0].time,
                end_time=group[-1].time,
                handshake_seen=hs.syn_index is not None,
            )
        )
    return conns
