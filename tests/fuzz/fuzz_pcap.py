"""Fuzz target: the capture readers (classic pcap and pcapng), through the entry point the
evidence uses (a file read bounded, then decoded), and the TCP/UDP analysis of what they
return. Damage must come back as data or as the lab's own error naming the file."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from lab.evidence.analysis.pcap import read_capture
from lab.evidence.analysis.tcp import tcp_connections
from lab.evidence.analysis.udp import udp_flows
from tests.fuzz.harness import main


def _work_file() -> Path:
    """The file every input is written to (the reader takes a path, as the evidence does):
    in the run's artifact folder when one is given, which the caller removes, since
    libFuzzer ends the process without running Python's clean-up."""
    for arg in sys.argv[1:]:
        if arg.startswith("-artifact_prefix=") and arg.endswith("/"):
            return Path(arg.split("=", 1)[1]) / "fuzz-input.pcap"
    return Path(tempfile.gettempdir()) / "socket-lab-fuzz-input.pcap"


_FILE = _work_file()


def target(data: bytes) -> None:
    _FILE.write_bytes(data)
    read = read_capture(_FILE)
    read.describe()
    for damage in read.damage:
        str(damage)
    tcp_connections(read.packets)
    udp_flows(read.packets)


if __name__ == "__main__":
    main(target, "pcap")
