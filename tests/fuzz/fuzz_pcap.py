"""Fuzz target: the capture readers (classic pcap and pcapng), through the entry point the
evidence uses (a file read bounded, then decoded), and the TCP/UDP analysis of what they
return. Damage must come back as data or as the lab's own error naming the file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lab.evidence.analysis.pcap import read_capture
from lab.evidence.analysis.tcp import tcp_connections
from lab.evidence.analysis.udp import udp_flows
from tests.fuzz.harness import main

# One file, rewritten for every input: the reader takes a path, as the evidence does.
_FILE = Path(tempfile.mkdtemp(prefix="fuzz-pcap-")) / "eth0.pcap"


def target(data: bytes) -> None:
    _FILE.write_bytes(data)
    read = read_capture(_FILE)
    read.describe()
    for damage in read.damage:
        str(damage)
    tcp_connections(read.packets)
    udp_flows(read.packets)


if __name__ == "__main__":
    try:
        main(target, "pcap")
    finally:
        _FILE.unlink(missing_ok=True)
        os.rmdir(_FILE.parent)
