"""The reorder claim, on segments that show reordering and on segments that do not; and
SACK blocks read from a real capture as tshark reads them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.evidence.analysis.packet import TcpOptions
from lab.evidence.analysis.pcap import read_packets
from lab.evidence.analysis.tcp import tcp_connections
from lab.verdict.reorder import reordering
from tests.conftest import require
from tests.netem.lossy import lossy_capture
from tests.netem.test_retransmission_kinds import ACK, CISN, SISN, S, Wire


def server_view(overtaken: bool, sack: bool) -> Wire:
    """What the server receives of three segments, the first overtaken by the others."""
    w = Wire()
    w.handshake()
    order = [101, 201, 1] if overtaken else [1, 101, 201]
    ack = 1
    for k, rel in enumerate(order):
        w.data(0.1 + k * 0.01, rel)
        ack = 301 if rel == 1 and overtaken else (rel + 100 if not overtaken else 1)
        blocks = ((CISN + 101, CISN + rel + 100),) if sack and ack == 1 else ()
        w.send(0.105 + k * 0.01, S, ACK, SISN + 1, CISN + ack, options=TcpOptions(sack=blocks))
    return w


def test_reordered_data_duplicate_acks_and_sack_blocks_are_counted() -> None:
    (conn,) = tcp_connections(server_view(overtaken=True, sack=True).packets)
    r = reordering(conn)
    # Both ACKs of 1 repeat the SYN-ACK's: duplicates, each with a SACK block.
    assert (r.ahead, r.duplicate_acks, r.with_sack) == (1, 2, 2)  # one gap opened


def test_in_order_data_is_not_reordering() -> None:
    (conn,) = tcp_connections(server_view(overtaken=False, sack=False).packets)
    assert reordering(conn).ahead == 0


def test_duplicate_acks_without_sack_are_seen_as_such() -> None:
    (conn,) = tcp_connections(server_view(overtaken=True, sack=False).packets)
    r = reordering(conn)
    assert r.duplicate_acks == 2 and r.with_sack == 0


@pytest.mark.netns
@pytest.mark.slow
def test_sack_blocks_match_tshark(root: None, tmp_path: Path) -> None:
    require(shutil.which("tshark") is not None, "needs tshark on PATH")
    # Back-to-back segments: a loss is followed by later data, answered with SACK.
    pcap = lossy_capture(tmp_path, every=7, chunks=40, pace=0.01)
    ours = {
        p.index: [e for block in p.options.sack for e in block]
        for p in read_packets(pcap)
        if p.options is not None and p.options.sack
    }
    argv = ["tshark", "-r", str(pcap), "-o", "tcp.relative_sequence_numbers:FALSE",
            "-Y", "tcp.options.sack_le", "-T", "fields", "-e", "frame.number",
            "-e", "tcp.options.sack_le", "-e", "tcp.options.sack_re"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    theirs = {}
    for line in out.splitlines():
        frame, left, right = line.split("\t")
        lefts, rights = left.split(","), right.split(",")
        theirs[int(frame)] = [int(v) for pair in zip(lefts, rights, strict=True) for v in pair]
    assert ours and ours == theirs
