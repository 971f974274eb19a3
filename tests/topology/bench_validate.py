"""Benchmark: how long checking a topology file takes (shipped files, and generated files
of growing size up to the 250-node limit, with as many scenarios).

    python3 -m tests.topology.bench_validate [--repeat 20]

Prints medians; figures only, nothing here fails on speed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

from lab.spec.topology import load_topology, load_topology_text
from tests.labcli import ROOT


def generated(nodes: int) -> str:
    """One /16 LAN, a server with two services, and one scenario per client node."""
    lines = [
        "networks: {lan: {subnet: 10.77.0.0/16}}",
        "nodes:",
        "  server: {interfaces: {lan: 10.77.0.10}}",
    ]
    for i in range(1, nodes):
        lines.append(f"  c{i:03d}: {{interfaces: {{lan: 10.77.{i // 200 + 1}.{i % 200 + 10}}}}}")
    lines += [
        "services:",
        "  fork: {node: server, program: fork_server, options: {backlog: 128}}",
        "  udp: {node: server, program: udp_echo}",
        "scenarios:",
    ]
    for i in range(1, nodes):
        svc = "fork" if i % 2 else "udp"
        lines.append(
            f"  - {{name: s{i:03d}, service: {svc}, clients: [c{i:03d}], send: [a, b], "
            "expect: [A, B], concurrency: 4, hold: 1}"
        )
    return "\n".join(lines) + "\n"


def median_ms(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"load_topology, median of {args.repeat} (milliseconds)")
    for path in sorted((ROOT / "topologies").glob("*.yaml")):
        ms = median_ms(partial(load_topology, path), args.repeat)
        print(f"  {path.name:22} {ms:8.2f}")
    for nodes in (10, 50, 100, 250):
        text = generated(nodes)
        ms = median_ms(partial(load_topology_text, text, f"gen{nodes}.yaml"), args.repeat)
        print(f"  generated {nodes:3} nodes     {ms:8.2f}   ({len(text.splitlines())} lines)")


if __name__ == "__main__":
    main()
