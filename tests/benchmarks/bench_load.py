"""Benchmark: the load generator against the fork, thread and iterative servers across a
real link: two network namespaces on one LAN (the lab's NetnsBackend), the server on one,
``lab.programs.loadgen`` on the other.

    python3 -m tests.benchmarks.bench_load [--repeat 3] [--duration 3]
        [--concurrency 1,100,1000] [--modes persistent,per-request]
        [--servers fork_server,thread_server,iterative_server] [--server-nofile 4096]

Prints server x mode x concurrency -> messages/s, connections/s, p50 and p99 latency,
errors, clients served, the ramp's length and the server's listen-queue overflows
(``ListenOverflows`` from its namespace's /proc/net/netstat), as medians over the repeats.
Then, unless ``--no-limits``, the limits that stand in the way of 1,000 clients, each
run once: the servers at the usual soft descriptor limit of 1024, and no ramp.

Each run gets a fresh server on a fresh port (per-request runs leave the client's ports in
TIME_WAIT for that port only). The servers run under ``prlimit --nofile=N:``; the
loadgen raises its own soft limit to the hard one. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
from dataclasses import dataclass
from types import FrameType
from typing import Any

from tests.programs.netns_pair import Pair, lan_pair

SERVERS = ("fork_server", "thread_server", "iterative_server")
MODES = ("persistent", "per-request")
_ports = itertools.count(10000)


@dataclass(frozen=True)
class Load:
    server: str
    mode: str
    concurrency: int
    nofile: int
    backlog: int
    ramp: int


def listen_overflows(pair: Pair) -> int:
    """TcpExt ListenOverflows of the server's namespace: connections its full accept
    queue could not take (the client retransmits, or gives up)."""
    text = pair.backend.run("srv", ["cat", "/proc/net/netstat"]).stdout
    lines = [line.split() for line in text.splitlines() if line.startswith("TcpExt:")]
    names, values = lines[0], lines[1]
    return int(values[names.index("ListenOverflows")])


def run_once(pair: Pair, load: Load, args: argparse.Namespace) -> dict[str, Any]:
    port = next(_ports)
    proc, _ = pair.start_server(
        load.server, "--backlog", str(load.backlog), port=port, nofile=load.nofile
    )
    try:
        before = listen_overflows(pair)
        _, doc, _ = pair.loadgen(
            *("--port", str(port), "--mode", load.mode, "-c", str(load.concurrency)),
            *("-d", str(args.duration), "--timeout", str(args.timeout), "--size", str(args.size)),
            *("--ramp", str(load.ramp), "--ramp-timeout", str(args.ramp_timeout)),
            timeout=args.ramp_timeout + args.duration + args.timeout + 120,
        )
        doc["overflows"] = listen_overflows(pair) - before
    finally:
        proc.stop(30)
    return doc


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


HEADER = (
    f"{'server':16} {'mode':11} {'conc':>5} {'msgs/s':>9} {'conns/s':>8} {'p50 ms':>8} "
    f"{'p99 ms':>8} {'errors':>7} {'served':>10} {'ramp s':>7} {'ovfl':>6}  error kinds"
)


def row(load: Load, docs: list[dict[str, Any]]) -> str:
    def med(key: str) -> float | None:
        return _median([d[key] for d in docs])

    def lat(key: str) -> float | None:
        return _median([d["latency_ms"][key] for d in docs])

    kinds: dict[str, int] = {}
    for d in docs:
        for kind, n in d["errors_by_kind"].items():
            kinds[kind] = kinds.get(kind, 0) + n
    kinds_text = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    if any(not d["ramp"]["complete"] for d in docs):
        kinds_text = ("ramp cut; " + kinds_text).rstrip("; ")
    served = f"{_num(med('clients_served'), 0, 0)}/{load.concurrency}"
    ramp = _median([d["ramp"]["seconds"] for d in docs])
    return (
        f"{load.server:16} {load.mode:11} {load.concurrency:5} "
        f"{_num(med('messages_per_s'), 9, 0)} {_num(med('connections_per_s'), 8, 0)} "
        f"{_num(lat('p50'), 8, 2)} {_num(lat('p99'), 8, 2)} {_num(med('errors'), 7, 0)} "
        f"{served:>10} {_num(ramp, 7, 2)} {_num(med('overflows'), 6, 0)}  {kinds_text}"
    )


def table(pair: Pair, loads: list[Load], args: argparse.Namespace, repeat: int) -> None:
    print(HEADER, flush=True)
    for load in loads:
        docs = [run_once(pair, load, args) for _ in range(repeat)]
        print(row(load, docs), flush=True)


def main_table(pair: Pair, args: argparse.Namespace) -> None:
    print(
        f"\nmedians of {args.repeat}; {args.duration:g} s window, {args.size} B messages, "
        f"ramp {args.ramp}, timeout {args.timeout:g} s, server nofile {args.server_nofile}, "
        f"backlog {args.backlog}"
    )
    loads = [
        Load(server, mode, conc, args.server_nofile, args.backlog, args.ramp)
        for server in args.servers
        for mode in args.modes
        for conc in args.concurrency
    ]
    table(pair, loads, args, args.repeat)


def limits_table(pair: Pair, args: argparse.Namespace) -> None:
    """What stands in the way: the usual 1024 descriptors, and connecting with no ramp."""
    print("\nlimits, each run once: soft nofile 1024 with 1,100 clients; no ramp (1,000 at once)")
    loads = [
        Load("fork_server", "persistent", 1100, 1024, args.backlog, args.ramp),
        Load("thread_server", "persistent", 1100, 1024, args.backlog, args.ramp),
        Load("fork_server", "persistent", 1000, args.server_nofile, args.backlog, 1000),
        Load("thread_server", "persistent", 1000, args.server_nofile, args.backlog, 1000),
    ]
    print("nofile  ramp  " + HEADER, flush=True)
    for load in loads:
        doc = run_once(pair, load, args)
        print(f"{load.nofile:6} {load.ramp:5}  {row(load, [doc])}", flush=True)


def _csv(kind: type[Any], choices: tuple[str, ...] = ()) -> Any:
    def parse(text: str) -> list[Any]:
        items = [kind(item) for item in text.split(",") if item]
        bad = [item for item in items if choices and item not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"expected a comma list of {choices or kind}")
        return items

    return parse


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--repeat", type=int, default=3)
    add("--duration", type=float, default=3.0, help="counted seconds per run (3)")
    add("--concurrency", type=_csv(int), default=[1, 100, 1000])
    add("--modes", type=_csv(str, MODES), default=list(MODES))
    add("--servers", type=_csv(str, SERVERS), default=list(SERVERS))
    add("--size", type=int, default=32, help="bytes per message (32)")
    add("--ramp", type=int, default=64, help="loadgen --ramp (64)")
    add("--timeout", type=float, default=5.0, help="loadgen --timeout (5 s)")
    add("--ramp-timeout", type=float, default=30.0, help="loadgen --ramp-timeout (30 s)")
    add("--server-nofile", type=int, default=4096, help="servers' soft RLIMIT_NOFILE (4096)")
    add("--backlog", type=int, default=128, help="servers' listen backlog (128, their default)")
    add("--no-limits", action="store_true", help="skip the limits table")
    return parser.parse_args()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through lan_pair(): the namespaces go


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    with lan_pair() as pair:
        print(
            f"loadgen on cli -> server on srv, one veth/bridge LAN; {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f}; somaxconn in srv "
            f"{pair.sysctl('srv', 'net.core.somaxconn')}, tcp_max_syn_backlog "
            f"{pair.sysctl('srv', 'net.ipv4.tcp_max_syn_backlog')}",
            flush=True,
        )
        main_table(pair, args)
        if not args.no_limits:
            limits_table(pair, args)


if __name__ == "__main__":
    main()
