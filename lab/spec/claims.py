"""The claims a scenario may make, declared as data: each name's protocol, one line of
what it states, and when it holds (the README's claims table is generated from this).
``lab.verdict.claims`` judges each; validation needs only this table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ClaimSpec:
    protocol: str  # "tcp", "udp" or "any": the services the claim can be made about
    summary: str  # one line, for `lab experiment --list`
    holds_when: str  # what the evidence must show, for the README


CLAIM_SPECS: Mapping[str, ClaimSpec] = {
    "handshake": ClaimSpec(
        "tcp",
        "SYN, SYN-ACK, ACK with ISN+1 acks and MSS options",
        "every connection shows SYN, SYN-ACK, ACK in the server's capture, each acknowledging the "
        "peer's ISN + 1, with an MSS in both SYNs",
    ),
    "four-way-close": ClaimSpec(
        "tcp",
        "FIN and ACK each way",
        "each side sends a FIN and each FIN is acknowledged. Without `close_delay` on the service "
        'the passive side\'s ACK may ride on its FIN (named "three-way": FIN, FIN+ACK, ACK); with '
        "it, only four separate segments pass (FIN, ACK, FIN, ACK)",
    ),
    "close-wait-on-server": ClaimSpec(
        "tcp",
        "the server ACKs the client's FIN before its own FIN",
        "the client's FIN comes first and the server acknowledges it no later than its own FIN, "
        "and the server's `after` snapshot holds none of them still in CLOSE_WAIT (a descriptor "
        "never closed, whose FIN comes only when the server is stopped)",
    ),
    "time-wait-on-client": ClaimSpec(
        "tcp",
        "the active closer (client) ends in TIME_WAIT",
        "the client closed first, and its sockets are in TIME_WAIT in the clients' `after` "
        "snapshot, none on the server",
    ),
    "half-close": ClaimSpec(
        "tcp",
        "after the client's FIN it still receives",
        "after the client's FIN, the server's segments (its FIN, any data) are still received and "
        "acknowledged, with no RST",
    ),
    "no-handshake": ClaimSpec(
        "udp",
        "the first packet is the client's datagram",
        "each flow opens with the client's first datagram; no TCP on the service's port",
    ),
    "no-time-wait": ClaimSpec(
        "any",
        "no TIME_WAIT socket on the port afterwards",
        "no socket on the service's port is in TIME_WAIT in the `after` snapshots",
    ),
    "datagram-boundaries": ClaimSpec(
        "udp",
        "one datagram per item, each way",
        "one datagram per item sent, one datagram of the same bytes back",
    ),
    "utf8-on-wire": ClaimSpec(
        "tcp",
        "non-ASCII replies as UTF-8 bytes on the wire",
        "every non-ASCII item of `expect` is in the server's segments as its UTF-8 bytes",
    ),
    "one-reply-per-line": ClaimSpec(
        "tcp",
        "one reply line per request line, however the lines were cut into segments",
        "on every connection the server's segments hold as many lines as the client's (two "
        "requests that arrive together, in one segment or one `read()`, still get two replies)",
    ),
    "n-children": ClaimSpec(
        "tcp",
        "N held connections, N live children",
        "in `during`, the server has one live child per held connection",
    ),
    "children-reaped": ClaimSpec(
        "tcp",
        "no zombie child afterwards",
        "in `after`, the server has no zombie child",
    ),
    "zombies": ClaimSpec(
        "tcp",
        "one zombie per served connection (no_reap)",
        "in `after`, the server has one zombie child per connection it served (`no_reap`)",
    ),
    "one-process-n-threads": ClaimSpec(
        "tcp",
        "one process with N+1 threads for N held connections",
        "in `during`, the server has no child and N+1 threads for N held connections",
    ),
    "ips-unchanged-macs-rewritten": ClaimSpec(
        "tcp",
        "across a router: same IPs, other MACs",
        "a packet seen in a client's and the server's captures has the same IPs and other MACs",
    ),
    "ttl-decremented": ClaimSpec(
        "tcp",
        "across a router: TTL one less",
        "the same packet's TTL is one less downstream",
    ),
    "refused-by-rst": ClaimSpec(
        "tcp",
        "a closed port answers SYN with RST+ACK",
        "the client's SYN to the probed port is answered by RST+ACK acknowledging SYN + 1, no "
        "SYN-ACK, and the client reports ECONNREFUSED",
    ),
    "epipe-after-reset": ClaimSpec(
        "tcp",
        "writing after the peer's RST fails with EPIPE",
        "the server's FIN comes first, the client sends data after it, the server answers with "
        "RST, and the client's last write fails with EPIPE",
    ),
    "early-close-noticed": ClaimSpec(
        "tcp",
        "after the server's early close the client stops and says so",
        "the server's FIN comes first (pcap), and each client then exits by itself (not killed "
        "after the lab's reply timeout) with a message on its stderr, such as `str_cli`'s "
        '"server terminated prematurely"',
    ),
    "eaddrinuse-in-time-wait": ClaimSpec(
        "tcp",
        "restart in TIME_WAIT without SO_REUSEADDR fails",
        "the server's FIN came first (pcap); at each restart without `reuseaddr` its snapshot "
        "shows the scenario's connection in TIME_WAIT on the server's port, and the new server "
        "exited 1 with EADDRINUSE in its log",
    ),
    "reuseaddr-rebinds": ClaimSpec(
        "tcp",
        "restart in TIME_WAIT with SO_REUSEADDR listens",
        "at each restart with `reuseaddr`, the snapshot still shows that TIME_WAIT, and the new "
        "server listens",
    ),
    "zero-window": ClaimSpec(
        "tcp",
        "a reader that stops: window 0, server probes",
        "the client advertises window 0 and the server probes the closed window (an empty segment "
        "one below the client's ack, Linux's persist-timer probe, which Wireshark shows as a "
        "keep-alive; or data from the client's ack on, e.g. Linux re-sending what was in flight "
        "when the window closed)",
    ),
    "window-reopens": ClaimSpec(
        "tcp",
        "a window update reopens the window; every reply arrives",
        "after its last zero window the client sends a window update (no data, same ack, new "
        "window), the server sends again, and every reply byte is on the wire and every reply "
        "right in the client's report",
    ),
    "served-in-turn": ClaimSpec(
        "tcp",
        "queued while another is served, replied to after its FIN",
        "each connection's handshake completes while another connection to the service is being "
        "served, and its first reply comes only after the server's FIN to that one",
    ),
    "syn-retransmitted": ClaimSpec(
        "tcp",
        "accept queue full: the SYN is dropped and sent again",
        "some connection's SYN is sent again with the same ISN, and each such SYN first met a full"
        " accept queue: at least `backlog` other connections done with their handshake and not yet"
        " replied to",
    ),
    "retransmission": ClaimSpec(
        "tcp",
        "lost data sent again, same sequence number, the timer doubling",
        "in the client's capture, some of the client's data is sent again from the sequence "
        "number it was first sent with; a segment lost again waits at least 1.5 times as long "
        "as before (exponential backoff), from its third resend on: Linux's first resend on "
        "a timer is a tail loss probe, and the retransmission timeout after it is about as "
        "long (not shorter). Needs loss where the server receives (`netem`, or the loss "
        "fallback without it)",
    ),
    "one-round-trip": ClaimSpec(
        "tcp",
        "the handshake and each ACK take one round trip",
        "in the client's capture, the SYN-ACK comes one round trip after the SYN (the `delay`s "
        "netem adds both ways, at most 50 ms more) and no data of the client's is acknowledged "
        "sooner than one round trip after it was sent",
    ),
    "slow-start": ClaimSpec(
        "tcp",
        "bytes in flight grow round trip after round trip",
        "in the client's capture, its most bytes in flight (sent, not yet acknowledged) in "
        "each of its first four round trips (the handshake's RTT) is at least 1.5 times the "
        "round before. Needs a `delay` long against the sending time (`netem`)",
    ),
    "reorder": ClaimSpec(
        "tcp",
        "out-of-order data: duplicate ACKs with SACK blocks",
        "in the server's capture, some of the client's data arrives ahead of a gap, and the "
        "server answers with duplicate ACKs carrying SACK blocks. Needs `reorder` (`netem`)",
    ),
    "frame-anatomy": ClaimSpec(
        "tcp",
        "one data segment taken apart: Ethernet, IPv4, TCP, payload agree with the scenario",
        "the scenario's first data segment from a client, in the server's capture, has the two "
        "ends' MACs (those of the server's replies, swapped), EtherType IPv4, a sound IPv4 header "
        "checksum, the client's and the server's addresses, the service's port, a TCP checksum "
        "that is valid or the pseudo-header sum the kernel leaves for checksum offload, and a "
        "payload the client sends",
    ),
    "byte-order": ClaimSpec(
        "tcp",
        "the port and address on the wire in network byte order (big-endian)",
        "in the scenario's first data segment, the bytes of the destination port and address "
        "are the service's port and the server's address most significant byte first (what "
        "`htons`/`htonl` make of them); the detail shows the host's own order beside them",
    ),
    "bind-address": ClaimSpec(
        "tcp",
        "a server answers on the address it bound (every one for 0.0.0.0), RST elsewhere",
        "the service listens on its `bind` address in the server's `after` snapshot, and each "
        "of the scenario's SYNs is answered by SYN-ACK when sent to that address (any of the "
        "node's for `0.0.0.0`) and by RST when sent to another",
    ),
    "ephemeral-ports": ClaimSpec(
        "tcp",
        "clients that never bind get distinct ports from the kernel's ephemeral range",
        "every connection's client port in the server's capture is distinct and inside "
        "`net.ipv4.ip_local_port_range` as read on the client node before the run, and the "
        "client's `during` snapshot shows the same ports",
    ),
    "mss-follows-mtu": ClaimSpec(
        "tcp",
        "the handshake's MSS is the network's MTU - 40",
        "in the server's capture, the SYN and the SYN-ACK of every connection announce MSS = the "
        "`mtu` of the server's first network (1500 without one) - 40 (IPv4 and TCP headers)",
    ),
    "segments-within-mss": ClaimSpec(
        "tcp",
        "a write larger than the MSS leaves as segments no larger than it",
        "in the server's capture, each way sends more bytes than one MSS and no data segment "
        "carries more than the MSS its receiver announced",
    ),
    "connection-per-child": ClaimSpec(
        "tcp",
        "each connection's 4-tuple belongs to one child of the fork server",
        "in the server's `during` snapshots, each of the scenario's connections is ESTABLISHED "
        "and held by exactly one live child of the server, a different one each; in its "
        "capture, each 4-tuple's segments make one connection whose server bytes are its own "
        "client's bytes upper-cased",
    ),
    "listener-with-parent": ClaimSpec(
        "tcp",
        "the listening socket stays with the parent",
        "in the server's `during` snapshots, the one LISTEN socket on the service's port is "
        "held by the server's pid alone while its children serve",
    ),
    "read-bytes": ClaimSpec(
        "tcp",
        "read() returns the bytes waiting",
        "the `read-returns` probe's blocking read() returned the byte count of the server's "
        "first data segment in the server's capture",
    ),
    "read-eagain": ClaimSpec(
        "tcp",
        "a non-blocking read() with no data fails with EAGAIN",
        "the probe's non-blocking read() returned -1 with EAGAIN, and the capture has no server "
        "data but the two replies (nothing was there to read)",
    ),
    "read-eintr": ClaimSpec(
        "tcp",
        "a signal without SA_RESTART ends a blocking read() with EINTR",
        "the probe's blocking read() returned -1 with EINTR after the signal was sent to it "
        "(handler without SA_RESTART), and the capture has no server data but the two replies",
    ),
    "read-restarts": ClaimSpec(
        "tcp",
        "with SA_RESTART the interrupted read() goes on and returns data",
        "with SA_RESTART, the probe's read() returned data after the signal was sent, as many "
        "bytes as the server's last data segment in the capture (the reply to a line sent "
        "after the signal)",
    ),
    "read-eof": ClaimSpec(
        "tcp",
        "read() returns 0 after the peer's FIN",
        "the probe's last read() returned 0, and the server's FIN is in the capture",
    ),
    "time-wait-2msl": ClaimSpec(
        "tcp",
        "the active closer's TIME_WAIT lasts 2MSL (60 s on Linux), then goes",
        "the client's FIN comes first (pcap); its socket is in TIME_WAIT in the client's "
        "`after` snapshot and in the `watch` snapshots until 50 to 70 s after the close's last "
        "ACK, then gone; none on the server. Needs `watch` (70 s or so)",
    ),
}
