"""Benchmark: the lab's fork and thread servers, their C twins and bare Python servers of
the same design, side by side on loopback, driven by one load generator.

    python3 -m tests.benchmarks.bench_servers [--repeat 3] [--duration 3]
        [--servers c-fork,bare-fork,lab-fork,c-thread,bare-thread,lab-thread]
        [--generator c|python] [--columns 50,1000,churn]

Columns: messages/s with 50 and with 1,000 persistent clients, and connections/s with 50
clients connecting once per request (churn); medians of --repeat runs. Then the ratios:
each lab server against the bare Python server of its design (the issue's target is at
least 0.9x), and each C twin against it: the median of the ratios within each round of
the interleaving, with their range. Three more servers run when --servers names them:
``bare-fork-log`` and ``bare-thread-log``, the bare servers writing the connect and close
lines every lab service writes, and ``bare-fork-reap``, which also reaps its children with
a SIGCHLD handler and logs each, as the course's fork server must; the lab's servers are
then compared with them too, and they with the bare server: what those duties alone cost,
and so the most a server that keeps them can reach against the bare one.

The generator is, by default, ``loadgen_epoll.c`` (one thread, epoll), built with the real
compiler into a temporary folder with the C servers: the lab's asyncio ``loadgen`` tops out
near 25k messages/s on two cores, below what every server here can answer, so it would
measure itself. Each run reports the generator's CPU use (seconds per second): the table
prints its largest value, which stays well below 1.0 when the generator is not the limit.
``--generator python`` drives the same table with ``lab.programs.loadgen``, to show that cap.

The runs are interleaved, server after server and in turn backwards (A B C C B A ...), for
each column, so that a change in the machine's load falls on every server alike, no server
always follows the same one, and the ratios within one run stay comparable on a shared
machine. Every run gets a fresh server on a fresh port, with a soft descriptor limit of
4096 (1,000 clients need more than the usual 1024). As root it all runs in a network
namespace of its own (``own_netns``): on the host's loopback, connection tracking's full
table dropped SYNs, and a churn run that met it stalled. Figures, not assertions; the load
average is printed before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.own_netns import rerun_in_own_netns, where
from tests.labcli import ROOT
from tests.programs.c_build import PROGRAMS
from tests.programs.conftest import HOST

SERVER_NOFILE = 4096


@dataclass(frozen=True)
class Column:
    title: str
    mode: str
    clients: int
    figure: str  # the loadgen summary key shown


COLUMNS = [
    Column("@50 persistent msg/s", "persistent", 50, "messages_per_s"),
    Column("@1000 persistent msg/s", "persistent", 1000, "messages_per_s"),
    Column("churn @50 conn/s", "per-request", 50, "connections_per_s"),
]
COLUMNS_BY_KEY = dict(zip(("50", "1000", "churn"), COLUMNS, strict=True))


def server_argvs(c_dir: Path) -> dict[str, Callable[[int], list[str]]]:
    # Python as the lab runs its programs (Session.program): -S, without the site module.
    # A fork() copies the page tables of all the memory the parent has touched, and the
    # child's exit gives it back, so every module imported costs each connection of a fork
    # server; a development install's site packages (3 MB here) would weigh on every
    # Python server alike and hide what the lab's own imports cost.
    py = [sys.executable, "-S", "-m"]

    def bare(design: str, *flags: str) -> Callable[[int], list[str]]:
        return lambda port: [*py, f"tests.benchmarks.bare_{design}_server", str(port), *flags]

    def lab(design: str) -> Callable[[int], list[str]]:
        return lambda port: [*py, f"lab.programs.{design}_server", "--host", HOST,
                             "--port", str(port)]  # fmt: skip

    def c(design: str) -> Callable[[int], list[str]]:
        return lambda port: [str(c_dir / f"{design}_server"), str(port), "--host", HOST]

    return {
        "c-fork": c("fork"),
        "bare-fork": bare("fork"),
        "bare-fork-log": bare("fork", "--log"),
        "bare-fork-reap": bare("fork", "--reap"),
        "lab-fork": lab("fork"),
        "c-thread": c("thread"),
        "bare-thread": bare("thread"),
        "bare-thread-log": bare("thread", "--log"),
        "lab-thread": lab("thread"),
    }


GENERATOR_SOURCE = Path(__file__).with_name("loadgen_epoll.c")


def build_c(out_dir: Path) -> None:
    for prog in PROGRAMS:
        if prog.name in ("fork_server", "thread_server"):
            subprocess.run(prog.argv(out_dir), check=True, timeout=300)
    subprocess.run(
        ["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
         str(out_dir / "loadgen_epoll"), str(GENERATOR_SOURCE)],
        check=True, timeout=300,
    )  # fmt: skip


def generator_argv(kind: str, c_dir: Path, port: int, column: Column, duration: float) -> list[str]:
    if kind == "c":
        return [str(c_dir / "loadgen_epoll"), HOST, str(port), column.mode,
                str(column.clients), f"{duration:g}"]  # fmt: skip
    return [sys.executable, "-m", "lab.programs.loadgen", "--host", HOST, "--port", str(port),
            "--mode", column.mode, "-c", str(column.clients), "-d", f"{duration:g}",
            "--json"]  # fmt: skip


def _server_limits() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = SERVER_NOFILE if hard == resource.RLIM_INFINITY else min(SERVER_NOFILE, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@dataclass(frozen=True)
class Sample:
    value: float | None
    errors: int
    generator_cpu: float | None


def _listening_port(log: Path, server: subprocess.Popen[bytes], wait: float = 20.0) -> int | None:
    """The port of the server's ``listening tcp`` line, once its log has it."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and server.poll() is None:
        match = re.search(rb"^listening tcp [\d.]+:(\d+)", log.read_bytes(), re.MULTILINE)
        if match:
            return int(match.group(1))
        time.sleep(0.02)
    return None


@contextlib.contextmanager
def serving(argv: list[str]) -> Iterator[tuple[subprocess.Popen[bytes], int | None]]:
    """A fresh server and its port once it listens (None if it never does); on leaving,
    the server is stopped with its children. It logs to a file, as every service of a lab
    does: a pipe would need a reader, whose wake-ups on each of the lab servers' log lines
    the bare servers (which log nothing) never cause."""
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as tmp:
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            server = subprocess.Popen(
                argv,
                cwd=ROOT,  # where -m finds lab and tests without the site module
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=out,
                preexec_fn=_server_limits,
                start_new_session=True,  # so that stopping it also stops its children
            )
        try:
            yield server, _listening_port(log, server)
        finally:
            _stop(server)


def run_once(
    argv: list[str], column: Column, make_generator: Callable[[int, Column], list[str]],
    duration: float,
) -> Sample:  # fmt: skip
    """One fresh server (port 0: the kernel picks), one generator run."""
    with serving(argv) as (_, port):
        if port is None:
            return Sample(None, 0, None)
        done = subprocess.run(
            make_generator(port, column),
            capture_output=True, text=True, timeout=duration + 180,
        )  # fmt: skip
        return parse_sample(done.stdout, column)


def parse_sample(stdout: str, column: Column) -> Sample:
    """The figure, errors and CPU use in a generator's summary (its last line, JSON)."""
    doc = json.loads(stdout.splitlines()[-1])
    value = doc.get(column.figure)
    errors = doc.get("errors", 0)
    if isinstance(errors, dict):  # the Python generator counts them by kind
        errors = sum(errors.values())
    cpu = doc.get("generator_cpu")
    return Sample(
        float(value) if value is not None else None,
        int(errors),
        float(cpu) if cpu is not None else None,
    )


def _stop(server: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)
    except ProcessLookupError:
        server.wait(30)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f}k" if value >= 10000 else f"{value / 1000:.2f}k"


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (5 min {five:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument(
        "--servers", default="c-fork,bare-fork,lab-fork,c-thread,bare-thread,lab-thread"
    )
    parser.add_argument("--generator", choices=("c", "python"), default="c")
    parser.add_argument(
        "--columns",
        default="50,1000,churn",
        help="which columns to measure, by key: 50, 1000, churn (default all three)",
    )
    args = parser.parse_args()
    rerun_in_own_netns("tests.benchmarks.bench_servers")
    names = args.servers.split(",")
    columns = [COLUMNS_BY_KEY[key] for key in args.columns.split(",")]
    samples: dict[tuple[str, str], list[Sample]] = {
        (name, col.title): [] for name in names for col in columns
    }
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as tmp:
        c_dir = Path(tmp)
        build_c(c_dir)
        argvs = server_argvs(c_dir)

        def make_generator(port: int, column: Column) -> list[str]:
            return generator_argv(args.generator, c_dir, port, column, args.duration)

        print(
            f"{where()}, {os.cpu_count()} cores, load average at start {_load()}; "
            f"medians of {args.repeat} x {args.duration:g} s, runs interleaved; 32 B "
            f"messages; generator: {args.generator}",
            flush=True,
        )
        for column in columns:
            for round_ in range(args.repeat):
                # A B C, then C B A: a server that always ran right after another (a fork
                # server's thousand children still exiting, say) would meet its aftermath
                # in every round, and the pair's ratio would carry that order.
                for name in names if round_ % 2 == 0 else names[::-1]:
                    sample = run_once(argvs[name](0), column, make_generator, args.duration)
                    samples[name, column.title].append(sample)
                    print(  # progress, and each run's figure for a reader of an odd median
                        f"{column.title}, round {round_ + 1}/{args.repeat}, {name}: "
                        f"{_fmt(sample.value)} (errors {sample.errors})",
                        file=sys.stderr,
                        flush=True,
                    )
    print(f"load average at end {_load()}\n")
    _table(names, columns, samples)
    _ratios(names, columns, samples)


def _table(
    names: list[str], columns: list[Column], samples: dict[tuple[str, str], list[Sample]]
) -> None:
    print(f"{'server':16}" + "".join(f"{c.title:>24}" for c in columns) + f"{'errors':>8}")
    top_cpu = 0.0
    for name in names:
        row: list[float | None] = []
        errors = 0
        for column in columns:
            runs = samples[name, column.title]
            present = [r.value for r in runs if r.value is not None]
            row.append(statistics.median(present) if present else None)
            errors += sum(r.errors for r in runs)
            top_cpu = max([top_cpu, *(r.generator_cpu or 0.0 for r in runs)])
        print(f"{name:16}" + "".join(f"{_fmt(v):>24}" for v in row) + f"{errors:>8}")
    if top_cpu:
        print(f"generator CPU use, largest of all runs: {top_cpu:.2f} s/s (1.00 = a whole core)")


def _paired(mine: list[Sample], bare: list[Sample]) -> list[float]:
    """The ratio within each round of the interleaving, where both ran moments apart."""
    return [
        m.value / b.value
        for m, b in zip(mine, bare, strict=True)
        if m.value is not None and b.value
    ]


def _ratios(
    names: list[str], columns: list[Column], samples: dict[tuple[str, str], list[Sample]]
) -> None:
    print(
        "\nratios against the bare Python server of the same design (target for lab: >= 0.9):"
        "\nthe median of the per-round ratios, and their range over the rounds"
    )
    pairs = [
        (f"{kind}-{design}", f"bare-{design}{log}")
        for design in ("fork", "thread")
        for kind, log in (("lab", ""), ("c", ""), ("lab", "-log"), ("lab", "-reap"))
    ]
    # What the lab's duties cost a bare server on their own: the ceiling they leave the
    # lab's server against the bare one, whatever else it does.
    pairs += [(f"bare-{design}{duty}", f"bare-{design}") for design in ("fork", "thread")
              for duty in ("-log", "-reap")]  # fmt: skip
    for mine, bare in pairs:
        if mine not in names or bare not in names:
            continue
        cells = []
        for column in columns:
            ratios = _paired(samples[mine, column.title], samples[bare, column.title])
            cells.append(
                f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                if ratios
                else "-"
            )
        shown_alone = mine.startswith(("lab-", "c-")) and not bare.endswith(("-log", "-reap"))
        label = mine if shown_alone else f"{mine} / {bare}"
        print(f"{label:28}" + "".join(f"{c:>24}" for c in cells))


if __name__ == "__main__":
    main()
