"""Our retransmissions, against tshark's ``tcp.analysis.retransmission``, on one real
capture with real losses (see ``tests.netem.lossy``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.evidence.analysis.pcap import read_packets
from lab.evidence.analysis.tcp import tcp_connections
from lab.verdict.impaired import retransmission_problem, rtt_problem
from tests.conftest import require
from tests.netem.lossy import lossy_capture

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def tshark_frames(pcap: Path, field: str) -> list[int]:
    argv = ["tshark", "-r", str(pcap), "-Y", field, "-T", "fields", "-e", "frame.number"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [int(n) for n in out.split()]


def test_retransmissions_are_the_frames_tshark_names(root: None, tmp_path: Path) -> None:
    require(shutil.which("tshark") is not None, "needs tshark on PATH")
    pcap = lossy_capture(tmp_path)
    (conn,) = tcp_connections(read_packets(pcap))
    ours = [r.index for r in conn.retransmissions]
    assert len(ours) >= 2  # every 5th data segment of 16 was dropped
    assert ours == tshark_frames(pcap, "tcp.analysis.retransmission")
    assert [r.index for r in conn.retransmissions_of("fast")] == tshark_frames(
        pcap, "tcp.analysis.fast_retransmission"
    )
    assert [r.index for r in conn.retransmissions_of("spurious")] == tshark_frames(
        pcap, "tcp.analysis.spurious_retransmission"
    )
    # The claim reads the same capture: the lost data was sent again from its own number;
    # on loopback, no round trip of 80 ms.
    assert retransmission_problem(conn) is None
    assert "not one round trip" in (rtt_problem(conn, 0.08) or "")
    # Each was resent on the sender's timer: at least Linux's minimum RTO, 200 ms.
    assert all(r.kind == "timeout" and (r.since_previous or 0) >= 0.2 for r in conn.retransmissions)
