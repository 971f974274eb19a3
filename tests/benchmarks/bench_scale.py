"""Benchmark: the lab's own overhead, its size limits and a classroom, side by side in one run.

    python3 -m tests.benchmarks.bench_scale [--sections overhead,sizes,scale,classroom]
        [--baseline /work/main] [--repeat 5] [--sizes 2,100,1000] [--backends netns,docker]
        [--clients 250] [--docker-clients 100] [--classroom 30] [--docker-classroom 10]
        [--no-mininet]

- overhead: ``lab run topologies/default.yaml`` as a student runs it (a whole process),
  wall time and the run's own overhead (wall time minus the holds its scenarios declare);
  with ``--baseline DIR`` the same command from another checkout too, the two taken in
  turns so that both meet the same load.
- sizes: bring-up and teardown of one LAN of N netns hosts next to Mininet's figure for
  the same N in the same run (``mn --switch lxbr --controller none --topo single,N --test
  none``; Mininet is installed from Debian when missing), and the largest N again as
  four LANs joined by a router.
- scale: ``lab run`` of a 250-client scale topology on netns (and of a 100-client one on
  Docker, a container per client, when docker is among the backends): its phases, and how
  long judging the evidence and writing the report take.
- classroom: N copies of the default lab at once (no two share anything but the host),
  every one must pass; the total time and the peak memory of all their processes.

Prints medians; figures, never assertions. Only what this script starts is stopped, by
its own process ids; Mininet's global cleanup (``mn -c``) is never run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from tests.labcli import ROOT

DEFAULT = ROOT / "topologies" / "default.yaml"
DEFAULT_HOLD = 2.0  # the longest hold the default topology's scenarios declare
MININET_TIMEOUT = 420.0
# The 250-client lab's hold: longer than starting its 250 clients takes on two cores
# shared with other work (about 30 s at a load average of 15).
HOLD_250 = 45


def lab_run(
    tree: Path, topology: Path, backend: str, out: Path
) -> tuple[float, dict[str, float], bool]:
    """One whole ``lab run`` from ``tree``'s own code: its wall time, run.json timings and
    whether it passed (a failed run is counted and said, not the end of the benchmark)."""
    argv = [sys.executable, "-m", "lab.cli", "run", str(topology), "--backend", backend]
    argv += ["--out", str(out), "--quiet", "--json"]
    start = time.monotonic()
    done = subprocess.run(argv, cwd=tree, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    if done.returncode != 0:
        print(f"  lab run failed in {tree} ({done.returncode}): {done.stderr.strip()[-300:]}")
    return wall, run_timings(out), done.returncode == 0


def run_timings(out: Path) -> dict[str, float]:
    """The phases run.json records; none for a run refused before it started (no run.json)."""
    record = out / "run.json"
    timings = json.loads(record.read_text()).get("timings", {}) if record.exists() else {}
    return {k: float(v) for k, v in timings.items()}


def bench_overhead(backends: Sequence[str], trees: dict[str, Path], repeat: int) -> None:
    print(f"\nlab run topologies/default.yaml, median of {repeat} (s; holds {DEFAULT_HOLD:g} s)")
    print(f"{'backend':8} {'code':10} {'up':>6} {'run':>6} {'down':>6} {'wall':>7} {'overhead':>9}")
    for backend in backends:
        walls: dict[str, list[float]] = {name: [] for name in trees}
        failed = dict.fromkeys(trees, 0)
        phases: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(repeat):
                for name, tree in trees.items():  # in turns: both meet the same load
                    wall, timings, ok = lab_run(tree, DEFAULT, backend, Path(tmp) / f"{name}{i}")
                    walls[name].append(wall)
                    failed[name] += not ok
                    for key, value in timings.items():
                        phases[name].setdefault(key, []).append(value)
        for name in trees:
            wall = statistics.median(walls[name])
            cols = [statistics.median(phases[name].get(k, [0.0])) for k in ("up", "run", "down")]
            row = " ".join(f"{c:6.2f}" for c in cols)
            note = f"  ({failed[name]} of {repeat} failed)" if failed[name] else ""
            print(
                f"{backend:8} {name:10} {row} {wall:7.2f} {wall - DEFAULT_HOLD:9.2f}{note}",
                flush=True,
            )


# -- sizes -------------------------------------------------------------------------------


def one_lan(size: int) -> object:
    from lab.spec.model import Interface, Network, Node, Topology

    net = Network("lan", IPv4Network("10.77.128.0/20"))
    nodes = tuple(
        Node(f"n{i:04d}", (Interface("lan", IPv4Address(int(net.subnet[10]) + i)),))
        for i in range(size)
    )
    return Topology(name=f"lan{size}", networks=(net,), nodes=nodes)


def routed(size: int, lans: int = 4) -> object:
    """``size`` hosts on ``lans`` networks, a router on all of them as their gateway."""
    from lab.spec.model import Interface, Network, Node, Topology

    nets = tuple(Network(f"lan{k}", IPv4Network(f"10.{90 + k}.0.0/20")) for k in range(lans))
    router = Node("router", tuple(Interface(n.name, n.subnet[1]) for n in nets), router=True)
    hosts = []
    for i in range(size - 1):
        net = nets[i % lans]
        hosts.append(
            Node(
                f"h{i:04d}",
                (Interface(net.name, IPv4Address(int(net.subnet[10]) + i // lans)),),
                gateway=net.subnet[1],
            )
        )
    return Topology(name=f"routed{size}", networks=nets, nodes=(router, *hosts))


def netns_up_down(topology: object) -> tuple[float, float]:
    from lab.run.backends import backend_class
    from lab.run.backends.base import new_run_id

    backend = backend_class("netns")(new_run_id())
    start = time.monotonic()
    try:
        backend.up(topology)  # type: ignore[arg-type]
        up = time.monotonic() - start
    finally:
        mid = time.monotonic()
        backend.down()
    return up, time.monotonic() - mid


def ensure_mininet() -> str | None:
    """``mn``, installed from Debian when missing (with bridge-utils: its ``lxbr`` switch
    runs ``brctl``); None if it cannot be."""
    if shutil.which("mn") is None or shutil.which("brctl") is None:
        print("installing Mininet: apt-get install -y mininet bridge-utils", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "mininet", "bridge-utils"], env=env,
                       check=False, stdout=subprocess.DEVNULL)  # fmt: skip
    return shutil.which("mn") if shutil.which("brctl") else None


def mininet_up_down(mn: str, size: int) -> float | None:
    """Wall time of Mininet building and tearing down ``single,size``; None if it failed.
    It runs in a process group of its own, which alone is killed if it overruns."""
    argv = [mn, "--switch", "lxbr", "--controller", "none", "--topo", f"single,{size}"]
    argv += ["--test", "none"]
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=MININET_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    if proc.returncode != 0:
        print(f"  mn failed: {err.decode(errors='replace').strip()[-300:]}")
        return None
    return time.monotonic() - start


def bench_sizes(sizes: Sequence[int], repeat: int, mininet: bool) -> None:
    mn = ensure_mininet() if mininet else None
    print(f"\nup + down of one LAN of N netns hosts; median of {repeat} (1 above 100 hosts), s")
    print(
        f"{'hosts':>6} {'layout':14} {'up':>7} {'down':>7} {'total':>7} {'mininet':>8} {'ratio':>6}"
    )
    for size in sizes:
        layouts: list[tuple[str, Callable[[int], object]]] = [("one LAN", one_lan)]
        if size == max(sizes) and size > 2:
            layouts.append(("4 LANs+router", routed))
        times = repeat if size <= 100 else 1
        for label, make in layouts:
            runs = [netns_up_down(make(size)) for _ in range(times)]
            up = statistics.median(r[0] for r in runs)
            down = statistics.median(r[1] for r in runs)
            theirs = ""
            ratio = ""
            if mn is not None and label == "one LAN":
                samples = [mininet_up_down(mn, size) for _ in range(times)]
                good = [s for s in samples if s is not None]
                if good:
                    m = statistics.median(good)
                    theirs, ratio = f"{m:8.2f}", f"{(up + down) / m:6.2f}"
                else:
                    theirs = "  failed"
            print(
                f"{size:6} {label:14} {up:7.2f} {down:7.2f} {up + down:7.2f} "
                f"{theirs:>8} {ratio:>6}",
                flush=True,
            )


# -- the 250-client scale lab --------------------------------------------------------------


def scale_topology(clients: int) -> str:
    names = [f"c{i:03d}" for i in range(1, clients + 1)]
    lines = [
        f"name: scale{clients}",
        "networks:",
        "  lan: {subnet: 10.78.0.0/22}",
        "nodes:",
        "  server: {interfaces: {lan: 10.78.0.10}}",
    ]
    for i, name in enumerate(names):
        lines.append(f"  {name}: {{interfaces: {{lan: 10.78.{1 + i // 200}.{1 + i % 200}}}}}")
    lines += [
        "services:",
        "  fork:   {node: server, program: fork_server, options: {backlog: 512}}",
        "  thread: {node: server, program: thread_server, options: {backlog: 512}}",
        "scenarios:",
    ]
    half = len(names) // 2
    groups = (("fork-scale", "fork", names[:half]), ("thread-scale", "thread", names[half:]))
    for scenario, service, group in groups:
        lines += [
            f"  - name: {scenario}",
            f"    service: {service}",
            f"    clients: [{', '.join(group)}]",
            "    send: [hello]",
            "    expect: [HELLO]",
            "    concurrency: 2",
            f"    hold: {HOLD_250}",
        ]
    lines.append('capture: {enabled: true, filter: "tcp"}')
    return "\n".join(lines) + "\n"


def bench_scale(clients: int, backend: str) -> None:
    print(f"\nlab run of a {clients}-client scale topology on {backend} (s)")
    with tempfile.TemporaryDirectory() as tmp:
        topo = Path(tmp) / f"scale{clients}.yaml"
        topo.write_text(scale_topology(clients))
        out = Path(tmp) / "out"
        argv = [sys.executable, "-m", "lab.cli", "run", str(topo), "--backend", backend]
        start = time.monotonic()
        done = subprocess.run(
            [*argv, "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True
        )
        wall = time.monotonic() - start
        timings = run_timings(out)
        verdict = "passed" if done.returncode == 0 else f"FAILED ({done.returncode})"
        print(
            f"  {verdict}; wall {wall:.2f}; "
            + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        )
        if done.returncode != 0:
            print("  " + done.stdout[-1500:].replace("\n", "\n  "))
        start = time.monotonic()
        report = subprocess.run(
            [sys.executable, "-m", "lab.cli", "report", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        print(
            f"  judging the evidence and writing the report again (lab report): "
            f"{time.monotonic() - start:.2f} (exit {report.returncode})",
            flush=True,
        )


# -- classroom ---------------------------------------------------------------------------


def tree_rss_kib(root: int) -> int:
    """The summed resident memory of ``root``'s descendants (not ``root`` itself)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total = 0
    for pid in rss:
        p = parents.get(pid, 0)
        while p > 1 and p != root:
            p = parents.get(p, 0)
        if p == root and pid != root:
            total += rss[pid]
    return total


def bench_classroom(backend: str, copies: int) -> None:
    print(f"\nclassroom: {copies} copies of the default lab at once on {backend}")
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss_kib(os.getpid()))
            stop.wait(0.2)

    with tempfile.TemporaryDirectory() as tmp:
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        procs = []
        for i in range(copies):
            argv = [sys.executable, "-m", "lab.cli", "run", str(DEFAULT), "--backend", backend]
            argv += ["--out", str(Path(tmp) / f"student{i:02d}"), "--quiet"]
            procs.append(
                subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            )
        codes = [p.wait() for p in procs]
        total = time.monotonic() - start
        stop.set()
        sampler.join()
        passed = sum(1 for c in codes if c == 0)
        print(
            f"  {passed}/{copies} passed; total {total:.2f} s; "
            f"peak memory of their processes (summed RSS) {peak / 1024:.0f} MiB",
            flush=True,
        )
        for p, code in zip(procs, codes, strict=True):
            if code != 0 and p.stderr is not None:
                print("  failed: " + p.stderr.read().decode(errors="replace")[-400:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sections", default="overhead,sizes,scale,classroom")
    parser.add_argument("--backends", default="netns")
    parser.add_argument("--baseline", type=Path, help="another checkout, measured in turns")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="2,100,1000")
    parser.add_argument("--clients", type=int, default=250)
    parser.add_argument("--docker-clients", type=int, default=100)
    parser.add_argument("--classroom", type=int, default=30)
    parser.add_argument("--docker-classroom", type=int, default=10)
    parser.add_argument("--no-mininet", action="store_true")
    args = parser.parse_args()
    sections = args.sections.split(",")
    backends = args.backends.split(",")
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} at the start")
    if "overhead" in sections:
        trees = {"this": ROOT}
        if args.baseline is not None:
            trees = {"baseline": args.baseline.resolve(), "this": ROOT}
        bench_overhead(backends, trees, args.repeat)
    if "sizes" in sections:
        bench_sizes([int(s) for s in args.sizes.split(",")], args.repeat, not args.no_mininet)
    if "scale" in sections:
        if args.clients > 0:
            bench_scale(args.clients, "netns")
        if "docker" in backends and args.docker_clients > 0:
            bench_scale(args.docker_clients, "docker")  # a container per client node
    if "classroom" in sections:
        if args.classroom > 0:
            bench_classroom("netns", args.classroom)
        if "docker" in backends and args.docker_classroom > 0:
            bench_classroom("docker", args.docker_classroom)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
