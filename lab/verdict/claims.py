"""The course's experiments as checked claims.

A scenario may list ``claims:`` by name; each names one statement of the course ("the
active closer ends in TIME_WAIT", "a router rewrites MACs but not IPs") and is judged
as a pure function of the topology, the results folder and the scenario. A claim returns a
``Check`` whose detail states the evidence either way, so that a failed claim says what
the wire or the snapshots showed instead.

The claims live in one module per concept (``tcp_lifecycle``, ``udp``, ``processes``,
``flow_control``, ``accept_queue``, ``routing``, ``errors``, ``dictionary``,
``impaired``, ``anatomy``, ``binding``, ``demux``, ``segments``, ``readret``,
``timewait``); this table
names them as ``lab.spec.claims.CLAIM_SPECS`` declares them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lab.evidence.folder import Evidence
from lab.spec.model import Scenario, Topology
from lab.verdict.accept_queue import served_in_turn, syn_retransmitted
from lab.verdict.anatomy import byte_order, frame_anatomy
from lab.verdict.binding import bind_address, ephemeral_ports
from lab.verdict.bugs import judged
from lab.verdict.check import Check
from lab.verdict.client_close import close_noticed
from lab.verdict.demux import connection_per_child, listener_with_parent
from lab.verdict.dictionary import one_reply_per_line, utf8_on_wire
from lab.verdict.errors import (
    eaddrinuse_in_time_wait,
    epipe_after_reset,
    refused_by_rst,
    reuseaddr_rebinds,
)
from lab.verdict.flow_control import window_reopens, zero_window
from lab.verdict.impaired import one_round_trip, retransmitted, slow_start
from lab.verdict.processes import (
    children_reaped,
    n_children,
    one_process_n_threads,
    zombies_kept,
)
from lab.verdict.readret import read_bytes, read_eagain, read_eintr, read_eof, read_restarts
from lab.verdict.reorder import reordered
from lab.verdict.routing import ips_unchanged_macs_rewritten, ttl_decremented
from lab.verdict.segments import mss_follows_mtu, segments_within_mss
from lab.verdict.tcp_lifecycle import (
    close_wait_on_server,
    four_way_close,
    half_close,
    handshake,
    time_wait_on_client,
)
from lab.verdict.timewait import time_wait_2msl
from lab.verdict.udp import datagram_boundaries, no_handshake, no_time_wait

ClaimFn = Callable[[Topology, Evidence, Scenario], Check]


CLAIMS: Mapping[str, ClaimFn] = {
    "handshake": handshake,
    "four-way-close": four_way_close,
    "close-wait-on-server": close_wait_on_server,
    "time-wait-on-client": time_wait_on_client,
    "half-close": half_close,
    "no-handshake": no_handshake,
    "no-time-wait": no_time_wait,
    "datagram-boundaries": datagram_boundaries,
    "utf8-on-wire": utf8_on_wire,
    "one-reply-per-line": one_reply_per_line,
    "n-children": n_children,
    "children-reaped": children_reaped,
    "zombies": zombies_kept,
    "one-process-n-threads": one_process_n_threads,
    "ips-unchanged-macs-rewritten": ips_unchanged_macs_rewritten,
    "ttl-decremented": ttl_decremented,
    "refused-by-rst": refused_by_rst,
    "epipe-after-reset": epipe_after_reset,
    "early-close-noticed": close_noticed,
    "eaddrinuse-in-time-wait": eaddrinuse_in_time_wait,
    "reuseaddr-rebinds": reuseaddr_rebinds,
    "zero-window": zero_window,
    "window-reopens": window_reopens,
    "served-in-turn": served_in_turn,
    "syn-retransmitted": syn_retransmitted,
    "retransmission": retransmitted,
    "one-round-trip": one_round_trip,
    "slow-start": slow_start,
    "reorder": reordered,
    "frame-anatomy": frame_anatomy,
    "byte-order": byte_order,
    "bind-address": bind_address,
    "ephemeral-ports": ephemeral_ports,
    "mss-follows-mtu": mss_follows_mtu,
    "segments-within-mss": segments_within_mss,
    "connection-per-child": connection_per_child,
    "listener-with-parent": listener_with_parent,
    "read-bytes": read_bytes,
    "read-eagain": read_eagain,
    "read-eintr": read_eintr,
    "read-restarts": read_restarts,
    "read-eof": read_eof,
    "time-wait-2msl": time_wait_2msl,
}


def claim_checks(topo: Topology, ev: Evidence, sc: Scenario) -> list[Check]:
    """The checks of the claims a scenario makes, in the order it lists them, as the
    scenario's ``bug`` (if any) wants them judged."""
    return [judged(CLAIMS[name](topo, ev, sc), sc.bug, name) for name in sc.claims]
