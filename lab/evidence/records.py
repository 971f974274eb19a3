"""The per-connection evidence as typed records: one :class:`TcpRecord` per TCP
connection and one :class:`UdpRecord` per UDP flow, as summary.json carries them
(``connections`` and ``udp_flows``) and the HTML report draws them.

Times (``t``, the timeline, window series) are seconds after the connection's first
segment; ``start`` is the capture's own clock. Sides are named "client" and "server".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.spec.codec import json_name, omit_if_none


@dataclass
class EndRecord:
    """One end of a connection; ``node`` is None for an address of no topology host."""

    node: str | None
    ip: str
    port: int


@dataclass
class IntSides:
    client: int
    server: int


@dataclass
class MaybeIntSides:
    client: int | None
    server: int | None


@dataclass
class FlagSides:
    client: bool
    server: bool


@dataclass
class HandshakeRecord:
    """The three-way handshake; ``rtt`` is SYN to ACK as the capture saw it."""

    ok: bool
    reason: str
    client_isn: int | None
    server_isn: int | None
    mss: MaybeIntSides
    wscale: MaybeIntSides
    windows: MaybeIntSides
    window_scaling: bool
    sack_permitted: FlagSides
    timestamps: FlagSides
    syn_retransmissions: int
    rtt: float | None


@dataclass
class CloseRecord:
    """How the connection ended; ``*_by`` name hosts (node, else address), ``first_fin_side``
    the side ("client"/"server")."""

    kind: str
    complete: bool
    first_fin_by: str | None
    first_fin_side: str | None
    reset_by: str | None
    time_wait_by: list[str]
    steps: list[str]


@dataclass
class WindowEventRecord:
    """A zero window, zero-window probe or window update at segment ``index``."""

    kind: str
    index: int
    t: float
    sender: str = field(metadata=json_name("from"))
    win_bytes: int | None
    previous_win_bytes: int | None


@dataclass
class TimelineRecord:
    """When the connection reached each stage; None where the stage was not seen."""

    syns: list[float]
    handshake_done: float | None
    first_reply: float | None
    client_fin: float | None
    server_fin: float | None
    rst: float | None
    end: float | None


@dataclass
class PacketSightingRecord:
    """One packet as one capture saw it."""

    capture: str
    index: int
    time: float
    src_mac: str | None
    dst_mac: str | None
    src_ip: str
    dst_ip: str
    ttl: int


@dataclass
class HopRecord:
    """The same packet upstream and downstream of a hop; ``ttl_change`` is -1 per router,
    ``macs_rewritten`` None when a capture has no MACs."""

    direction: str
    flags: list[str]
    upstream: PacketSightingRecord
    downstream: PacketSightingRecord
    ips_rewritten: bool
    macs_rewritten: bool | None
    ttl_change: int
    summary: str


@dataclass
class PathRecord:
    """What a hop changed, for a connection seen on two networks."""

    captures: list[str]
    matched_by: str
    summary: str
    client_to_server: HopRecord | None
    server_to_client: HopRecord | None


@dataclass
class SegmentOptions:
    """The TCP options a segment carried; absent keys: the option was not there."""

    mss: int | None = field(default=None, metadata=omit_if_none())
    wscale: int | None = field(default=None, metadata=omit_if_none())
    sack_perm: bool | None = field(default=None, metadata=omit_if_none())
    ts: list[int] | None = field(default=None, metadata=omit_if_none())


@dataclass
class SegmentRecord:
    """One kept segment; ``pos`` is its place among all the connection's segments (a jump
    in ``pos`` is where segments were left out), ``payload`` a short preview."""

    index: int
    t: float
    sender: str = field(metadata=json_name("from"))
    flags: list[str]
    seq: int
    ack: int | None
    len: int
    win: int
    win_bytes: int | None
    options: SegmentOptions
    ttl: int
    retransmission: bool
    payload: str
    pos: int


@dataclass
class TraceRecord:
    """A time-sequence graph's points (Stevens', tcptrace's): the data ``sender`` sent
    and what its peer acknowledged. ``segments``: ``[t, start, end, kind]`` per data
    segment, sequence numbers relative, kind 0 an original, 1 a retransmission, 2 a
    spurious one. ``acks``: ``[t, ack, ack + window]`` at each of the peer's segments that
    moved either. ``thinned``: originals were left out to keep the size bounded (every
    retransmission is kept)."""

    sender: str
    segments: list[list[float]]
    acks: list[list[float]]
    thinned: bool


@dataclass
class TcpRecord:
    """One TCP connection, however many captures saw it (``seen_in``); built from the
    most complete sighting, ``evidence``."""

    id: str
    protocol: str
    client: EndRecord
    server: EndRecord
    service: str | None
    scenario: str | None
    handshake: HandshakeRecord
    close: CloseRecord
    bytes: IntSides
    originals: int  # segments carrying sequence space for the first time
    retransmissions: int  # every kind: timeout, fast and spurious
    fast_retransmissions: int
    spurious_retransmissions: int
    zero_windows: int
    zero_window_probes: int
    window_updates: int
    syn_retransmissions: int
    window_events: list[WindowEventRecord]
    window_series: dict[str, list[list[float]]]
    timeline: TimelineRecord
    start: float
    duration: float
    seen_in: list[str]
    evidence: str
    path: PathRecord | None
    segment_count: int
    segments_omitted: int
    segments: list[SegmentRecord]
    trace: TraceRecord | None = field(default=None, metadata=omit_if_none())


@dataclass
class UdpRecord:
    """One UDP flow, both directions; ``sizes`` are its first datagrams' sizes."""

    id: str
    protocol: str
    client: EndRecord
    server: EndRecord
    service: str | None
    scenario: str | None
    datagrams: IntSides
    bytes: IntSides
    sizes: list[int]
    start: float
    duration: float
    seen_in: list[str]
    evidence: str
