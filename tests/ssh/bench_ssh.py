"""Where the time of a run over SSH goes: the default topology on real sshd hosts (see
hosts.py), run in this process with every command over SSH counted and timed.

    PYTHONPATH=$PWD python3 -m tests.ssh.bench_ssh [--user root|socketlab] [--runs N]
    PYTHONPATH=$PWD python3 -m tests.ssh.bench_ssh --exec-cost [--user ...]

Prints, per run: wall time, commands (execs) and their total and median seconds, SFTP
reads, and the run's phases. ``--exec-cost`` instead times single commands on one host
(median of 9): what one command costs as that user, and one SFTP read. Needs root, sshd
and (for --user socketlab) .ci/setup.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.run.backends.ssh import conn as ssh_conn
from lab.run.backends.ssh.backend import SshBackend
from lab.run.runner import run_lab
from lab.spec.topology import load_topology
from tests.backends.contract_kit import lan
from tests.ssh.hosts import make_world
from tests.ssh.test_ssh import DEFAULT, ssh_topology

Counter = dict[str, list[float]]


def counted(name: str, method: Callable[..., Any], counts: Counter) -> Callable[..., Any]:
    lock = threading.Lock()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return method(*args, **kwargs)
        finally:
            with lock:
                counts.setdefault(name, []).append(time.monotonic() - start)

    return wrapper


def one_run(base: Path, user: str, k: int) -> None:
    world = make_world(load_topology(DEFAULT), base, user=user)
    try:
        topo = load_topology(ssh_topology(world, DEFAULT, base / f"t{k}.yaml"))
        known = world.known_hosts(base / f"kh{k}")
        counts: Counter = {}
        originals = {
            name: getattr(ssh_conn.Host, name)
            for name in ("execute", "read_file")
            if hasattr(ssh_conn.Host, name)
        }
        for name, method in originals.items():
            setattr(ssh_conn.Host, name, counted(name, method, counts))
        try:
            start = time.monotonic()
            record = run_lab(topo, SshBackend.configured(known_hosts=known), base / f"out{k}")
            wall = time.monotonic() - start
        finally:
            for name, method in originals.items():
                setattr(ssh_conn.Host, name, method)
    finally:
        world.down()
    execs = counts.get("execute", [])
    reads = counts.get("read_file", [])
    print(
        f"user {user}: run {wall:.1f} s, {len(execs)} commands ({sum(execs):.1f} s in all, "
        f"median {statistics.median(execs):.3f} s), {len(reads)} SFTP reads "
        f"({sum(reads):.1f} s); phases {record.timings}; error {record.error}"
    )


def exec_cost(base: Path, user: str) -> None:
    world = make_world(lan("h1"), base, user=user)
    try:
        known = world.known_hosts(base / "kh-cost")
        host = ssh_conn.Host(world.target("h1"), ssh_conn.Options(known))
        try:
            for line in COMMANDS:
                times = []
                for _ in range(9):
                    start = time.monotonic()
                    done = host.execute(line, timeout=60)
                    times.append(time.monotonic() - start)
                    assert done is not None and done[0] == 0, (line, done)
                print(f"user {user}: {line!r}: median {statistics.median(times) * 1000:.0f} ms")
            times = []
            for _ in range(9):
                start = time.monotonic()
                host.read_file("/proc/self/stat")
                times.append(time.monotonic() - start)
            print(f"user {user}: SFTP read: median {statistics.median(times) * 1000:.1f} ms")
        finally:
            host.close()
    finally:
        world.down()


COMMANDS = [
    "exec true",
    "exec python3 -c pass",
    "exec /usr/bin/python3 -c pass",
    "exec sudo -n -- /usr/bin/python3 -c pass",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--user", default="root")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--exec-cost", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        os.environ["SOCKET_LAB_STATE"] = str(Path(tmp) / "state")  # records of its own
        if args.exec_cost:
            exec_cost(Path(tmp), args.user)
            return
        for k in range(args.runs):
            one_run(Path(tmp), args.user, k)


if __name__ == "__main__":
    main()
