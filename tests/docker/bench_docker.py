"""Benchmark: docker backend up + down of one-LAN topologies, and a no-change image build.

    python3 -m tests.docker.bench_docker [--sizes 3,25] [--repeat 3]

Prints medians in seconds. Figures, not assertions: nothing here fails on speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from ipaddress import IPv4Network

from lab.deploy.images import build_images
from lab.run.backends.base import new_run_id
from lab.run.backends.docker import DockerBackend
from lab.spec.model import Interface, Network, Node, Topology


def one_lan(size: int) -> Topology:
    net = IPv4Network("10.61.0.0/22")
    nodes = tuple(
        Node(f"n{i:03d}", (Interface("lan", net.network_address + 10 + i),)) for i in range(size)
    )
    return Topology(f"lan{size}", (Network("lan", net),), nodes)


def up_down(size: int) -> tuple[float, float]:
    backend = DockerBackend(new_run_id())
    start = time.monotonic()
    try:
        backend.up(one_lan(size))
        up = time.monotonic() - start
    finally:
        start = time.monotonic()
        backend.down()
    return up, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,25")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    start = time.monotonic()
    build_images(offline=None, progress=lambda _: None)
    print(f"image build, nothing changed: {time.monotonic() - start:.2f} s")
    print(f"docker up / down, one LAN, median of {args.repeat} ({os.cpu_count()} cores)")
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [up_down(size) for _ in range(args.repeat)]
        up = statistics.median(r[0] for r in runs)
        down = statistics.median(r[1] for r in runs)
        print(f"  {size:4d} nodes: up {up:6.2f} s  down {down:6.2f} s  total {up + down:6.2f} s")


if __name__ == "__main__":
    main()
