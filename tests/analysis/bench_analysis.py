"""Decode and analysis throughput on a crafted capture; prints figures, asserts nothing.

python3 -m tests.analysis.bench_analysis [connections]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from lab.evidence.analysis import read_packets, tcp_connections
from tests.analysis.conftest import Wire, handshake


def build(path: Path, connections: int) -> int:
    frames = []
    for i in range(connections):
        w = Wire(client=("10.0.1.2", 20000 + i))
        handshake(w, 1000 + i, 5000 + i)
        c, s = 1001 + i, 5001 + i
        for k in range(10):
            w.tcp("c", "PA", c + 100 * k, s, b"x" * 100)
            w.tcp("s", "A", s, c + 100 * (k + 1))
        w.tcp("c", "FA", c + 1000, s)
        w.tcp("s", "FA", s, c + 1001)
        w.tcp("c", "A", c + 1001, s + 1)
        frames += w.frames
    out = Wire(frames=frames)
    out.write(path)
    return len(frames)


def main() -> None:
    connections = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.pcap"
        n = build(path, connections)
        t0 = time.perf_counter()
        packets = read_packets(path)
        t1 = time.perf_counter()
        conns = tcp_connections(packets)
        t2 = time.perf_counter()
    print(f"{n} packets, {len(conns)} connections")
    print(f"read_packets:    {t1 - t0:.3f} s ({n / (t1 - t0):,.0f} packets/s)")
    print(f"tcp_connections: {t2 - t1:.3f} s ({n / (t2 - t1):,.0f} packets/s)")


if __name__ == "__main__":
    main()
