"""The claims a scenario may make, declared as data: each name's protocol and one line
of what it states. ``lab.verdict.claims`` judges each; validation needs only this table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ClaimSpec:
    protocol: str  # "tcp", "udp" or "any": the services the claim can be made about
    summary: str


CLAIM_SPECS: Mapping[str, ClaimSpec] = {
    "handshake": ClaimSpec("tcp", "SYN, SYN-ACK, ACK with ISN+1 acks and MSS options"),
    "four-way-close": ClaimSpec("tcp", "FIN and ACK each way"),
    "close-wait-on-server": ClaimSpec("tcp", "the server ACKs the client's FIN before its own FIN"),
    "time-wait-on-client": ClaimSpec("tcp", "the active closer (client) ends in TIME_WAIT"),
    "half-close": ClaimSpec("tcp", "after the client's FIN it still receives"),
    "no-handshake": ClaimSpec("udp", "the first packet is the client's datagram"),
    "no-time-wait": ClaimSpec("any", "no TIME_WAIT socket on the port afterwards"),
    "datagram-boundaries": ClaimSpec("udp", "one datagram per item, each way"),
    "utf8-on-wire": ClaimSpec("tcp", "non-ASCII replies as UTF-8 bytes on the wire"),
    "n-children": ClaimSpec("tcp", "N held connections, N live children"),
    "children-reaped": ClaimSpec("tcp", "no zombie child afterwards"),
    "zombies": ClaimSpec("tcp", "one zombie per served connection (no_reap)"),
    "one-process-n-threads": ClaimSpec(
        "tcp", "one process with N+1 threads for N held connections"
    ),
    "ips-unchanged-macs-rewritten": ClaimSpec("tcp", "across a router: same IPs, other MACs"),
    "ttl-decremented": ClaimSpec("tcp", "across a router: TTL one less"),
    "refused-by-rst": ClaimSpec("tcp", "a closed port answers SYN with RST+ACK"),
    "epipe-after-reset": ClaimSpec("tcp", "writing after the peer's RST fails with EPIPE"),
    "eaddrinuse-in-time-wait": ClaimSpec("tcp", "restart in TIME_WAIT without SO_REUSEADDR fails"),
    "reuseaddr-rebinds": ClaimSpec("tcp", "restart in TIME_WAIT with SO_REUSEADDR listens"),
    "zero-window": ClaimSpec("tcp", "a reader that stops: window 0, server probes"),
    "window-reopens": ClaimSpec("tcp", "a window update reopens the window; every reply arrives"),
    "served-in-turn": ClaimSpec("tcp", "queued while another is served, replied to after its FIN"),
    "syn-retransmitted": ClaimSpec("tcp", "accept queue full: the SYN is dropped and sent again"),
}
