"""What a TCP connection is made of, as read from a capture: the frozen records that
``tcp_connections`` returns (handshake, segments, close, retransmissions, window events)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.evidence.analysis.common import Endpoint, ToDict
from lab.evidence.analysis.packet import TcpOptions

CLIENT = "client"
SERVER = "server"

CLOSE_KINDS = ("four-way", "three-way", "simultaneous", "reset", "half-open", "none")

SEQ_MOD = 1 << 32  # sequence and acknowledgement numbers wrap around


def other_side(side: str) -> str:
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


RETRANSMISSION_KINDS = ("timeout", "fast", "spurious")


@dataclass(frozen=True)
class Retransmission(ToDict):
    """A segment re-sending sequence space its sender had sent before. ``kind``, from what
    the sender had seen of the peer when it sent it: "spurious" if it carries data the
    peer had already acknowledged all of (as Wireshark defines it: never a bare SYN or
    FIN), "fast" after three or more duplicate ACKs asking for exactly this sequence
    number, else "timeout". ``attempt`` counts the sends of this sequence number (the
    original is 1); ``since_previous`` is the time since the previous one, the
    retransmission timeout for a "timeout" kind."""

    index: int
    time: float
    sender: str
    relative_seq: int
    payload_len: int
    flags: tuple[str, ...]
    original_index: int | None
    kind: str = "timeout"
    attempt: int = 2
    since_previous: float | None = None
    duplicate_acks: int = 0


@dataclass(frozen=True)
class WindowEvent(ToDict):
    """``kind`` is "zero-window" (a segment advertising window 0), "window-update" (a
    segment with no data, SYN, FIN or RST, the same ack as the sender's previous one and a
    new non-zero window, as Wireshark defines it) or "zero-window-probe" (a segment sent
    while the peer's last advertised window is 0, see ``zero_window_probes``; its window
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
    def originals(self) -> int:
        """Segments carrying sequence space for the first time (data, SYN or FIN)."""
        return sum(1 for s in self.segments if s.seq_len > 0 and not s.retransmission)

    def retransmissions_of(self, kind: str) -> tuple[Retransmission, ...]:
        return tuple(r for r in self.retransmissions if r.kind == kind)

    @property
    def data_segments(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.payload_len > 0)

    def stream(self, sender: str) -> bytes:
        """The bytes ``sender`` sent, put together by sequence number up to the first gap.

        A retransmission adds what no earlier copy carried: the capture may have missed the
        original (then the resend is the only copy), or the resend may be cut differently
        from it. Copies of bytes already had add nothing."""
        parts = sorted(
            (s for s in self.segments if s.sender == sender and s.payload),
            key=lambda s: (s.relative_seq, s.index),
        )
        out = bytearray()
        end = parts[0].relative_seq if parts else 0
        for s in parts:
            if s.relative_seq > end:
                break  # bytes between were never captured
            out += s.payload[end - s.relative_seq :]
            end = max(end, s.relative_seq + len(s.payload))
        return bytes(out)

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time
