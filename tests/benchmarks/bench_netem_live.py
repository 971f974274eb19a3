"""Benchmark: ``lab netem`` on a live lab: how long a change takes, and what a rate set with
it does to a real TCP transfer.

    python3 -m tests.benchmarks.bench_netem_live [--backend netns|docker] [--repeat 3]
        [--bytes 250000]

One lab of the default topology. A sink on the server counts what each connection brings
from its first byte to its end; client1 sends ``--bytes`` to it, ``--repeat`` times, with
``--rate 1mbit`` on client1's egress, then with ``--rate 2mbit`` on the server's ingress,
then with neither. Loss and rate work without the kernel's netem qdisc (netns: nftables
and tbf; Docker: tbf), so this runs on any kernel. Prints medians. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.bench_live import timed
from tests.labcli import ROOT

SINK = """
import socket, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7000))
l.listen(1)
while True:
    c, _ = l.accept()
    got, t = 0, None
    while True:
        b = c.recv(65536)
        if not b:
            break
        t = t or time.monotonic()
        got += len(b)
    print(got * 8 / (time.monotonic() - t) / 1e6, flush=True)
    c.close()
"""
SOURCE = """
import socket, sys
s = socket.create_connection(("10.77.1.10", 7000))
s.sendall(b"x" * int(sys.argv[1]))
s.close()
"""
INGRESS = ["server", "eth0", "--direction", "ingress"]
SETTINGS = [  # (what, lab netem's arguments, those that clear it)
    ("client1 egress --rate 1mbit", ["client1", "eth0", "--rate", "1mbit"], ["client1", "eth0"]),
    ("server ingress --rate 2mbit", [*INGRESS, "--rate", "2mbit"], INGRESS),
    ("none", [], []),
]


def lab(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *argv],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="netns", choices=("netns", "docker"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bytes", type=int, default=250_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SOCKET_LAB_STATE": str(Path(tmp) / "state")}
        up = ["up", "lab/data/topologies/default.yaml", "--backend", args.backend, "--quiet"]
        lab([*up, "--out", str(Path(tmp) / "out")], env)
        sink = subprocess.Popen(
            [sys.executable, "-m", "lab.cli", "exec", "server", "--", "python3", "-c", SINK],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert sink.stdout is not None
        try:
            time.sleep(2)  # the sink listening
            change = [timed(["netem", "client1", "eth0", "--rate", "5mbit"], env)]
            change += [timed(["netem", "client1", "eth0", "--clear"], env) for _ in range(2)]
            took = statistics.median(change)
            print(f"{args.backend}: lab netem (a change, then clears) median {took:.2f} s")
            for name, netem, clear in SETTINGS:
                if netem:
                    lab(["netem", *netem], env)
                rates = []
                for _ in range(args.repeat):
                    lab(["exec", "client1", "--", "python3", "-c", SOURCE, str(args.bytes)], env)
                    rates.append(float(sink.stdout.readline()))
                if clear:
                    lab(["netem", *clear, "--clear"], env)
                rate = statistics.median(rates)
                print(f"{args.backend}: {name}: {args.bytes} bytes at median {rate:.2f} Mbit/s")
        finally:
            sink.terminate()
            lab(["down"], env)


if __name__ == "__main__":
    main()
