"""The opening and the closing of a TCP connection: the three-way handshake checked number by
number, and how (and by whom) the connection was closed."""

from __future__ import annotations

from dataclasses import replace

from lab.evidence.analysis.common import Endpoint
from lab.evidence.analysis.packet import Packet, TcpOptions
from lab.evidence.analysis.tcp_model import (
    CLIENT,
    SEQ_MOD,
    SERVER,
    Close,
    CloseStep,
    Handshake,
    Segment,
    other_side,
)


def handshake(group: list[Packet], client: Endpoint) -> Handshake:
    """The opening exchange of ``client``'s connection, step by step: SYN, SYN-ACK, ACK."""
    syns = [p for p in group if p.src == client and p.has("SYN") and not p.has("ACK")]
    if not syns:
        return Handshake(ok=False, reason="no SYN captured (capture began after the handshake)")
    base = _from_syn(syns)
    synacks = [p for p in group if p.src != client and p.has("SYN") and p.has("ACK")]
    if not synacks:
        rst = any(p.src != client and p.has("RST") for p in group)
        why = "the server answered the SYN with RST (nothing listening)" if rst else "no SYN-ACK"
        return _replace(base, reason=why)
    sa = synacks[0]
    hs = _with_syn_ack(base, sa)
    isn_c = syns[0].seq or 0
    if sa.ack != (isn_c + 1) % SEQ_MOD:
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
    return _with_ack(hs, acks[0], isn_c, sa.seq or 0)


def _from_syn(syns: list[Packet]) -> Handshake:
    """What the client's first SYN tells (its copies with the same ISN are retransmissions)."""
    syn = syns[0]
    opts_c = syn.options or TcpOptions()
    return Handshake(
        ok=False,
        reason="",
        client_isn=syn.seq or 0,
        syn_index=syn.index,
        syn_time=syn.time,
        client_mss=opts_c.mss,
        client_wscale=opts_c.wscale,
        client_sack_permitted=opts_c.sack_permitted,
        client_timestamps=opts_c.timestamp is not None,
        client_window=syn.window,
        syn_retransmissions=sum(1 for p in syns[1:] if p.seq == syn.seq),
    )


def _with_syn_ack(base: Handshake, sa: Packet) -> Handshake:
    opts_s = sa.options or TcpOptions()
    return _replace(
        base,
        server_isn=sa.seq or 0,
        syn_ack_index=sa.index,
        syn_ack_time=sa.time,
        syn_ack_acknowledges=sa.ack,
        server_mss=opts_s.mss,
        server_wscale=opts_s.wscale,
        server_sack_permitted=opts_s.sack_permitted,
        server_timestamps=opts_s.timestamp is not None,
        server_window=sa.window,
        window_scaling=base.client_wscale is not None and opts_s.wscale is not None,
    )


def _with_ack(hs: Handshake, ack: Packet, isn_c: int, isn_s: int) -> Handshake:
    """The third step: the client's ACK must acknowledge the server's ISN + 1."""
    hs = _replace(hs, ack_index=ack.index, ack_time=ack.time, ack_acknowledges=ack.ack)
    if ack.has("RST"):
        return _replace(hs, reason="the client answered the SYN-ACK with RST")
    if ack.ack != (isn_s + 1) % SEQ_MOD:
        return _replace(
            hs, reason=f"ACK acknowledges {ack.ack}, expected server ISN + 1 = {isn_s + 1}"
        )
    if ack.seq != (isn_c + 1) % SEQ_MOD:
        return _replace(hs, reason=f"ACK has seq {ack.seq}, expected client ISN + 1")
    return _replace(hs, ok=True, reason="SYN, SYN-ACK, ACK; each ack = peer's ISN + 1")


def _replace(hs: Handshake, **changes: object) -> Handshake:
    return replace(hs, **changes)  # type: ignore[arg-type]


def close(segments: list[Segment]) -> Close:
    fins: dict[str, Segment] = {}
    for s in segments:
        if s.has("FIN") and not s.retransmission and s.sender not in fins:
            fins[s.sender] = s
    # The ack number that acknowledges each side's FIN (relative to that side's ISN).
    fin_ack = {side: s.relative_seq + s.payload_len + 1 for side, s in fins.items()}
    acked_at = _fin_acks(segments, fins, fin_ack)
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
    return _fin_close(first, fins, fin_ack, acked_at, fin_fields)


def _fin_acks(
    segments: list[Segment], fins: dict[str, Segment], fin_ack: dict[str, int]
) -> dict[str, Segment]:
    """Side -> the first later segment of its peer that acknowledges its FIN."""
    acked_at: dict[str, Segment] = {}
    for s in segments:
        peer = other_side(s.sender)
        if (
            peer in fins
            and peer not in acked_at
            and s.index > fins[peer].index
            and s.relative_ack is not None
            and s.relative_ack >= fin_ack[peer]
        ):
            acked_at[peer] = s
    return acked_at


def _fin_close(
    first: Segment,
    fins: dict[str, Segment],
    fin_ack: dict[str, int],
    acked_at: dict[str, Segment],
    fin_fields: dict[str, object],
) -> Close:
    """A close begun by ``first``'s FIN: half-open, simultaneous, three- or four-way."""
    second_side = other_side(first.sender)
    if second_side not in fins:
        return Close(kind="half-open", **fin_fields)  # type: ignore[arg-type]
    second = fins[second_side]
    if fin_fields["complete"]:
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
