"""Benchmark: where a connection's CPU time goes under churn, server by server.

    python3 -m tests.benchmarks.bench_churn_profile [--servers bare-fork,lab-fork]
        [--repeat 3] [--duration 4]

Needs root and ``perf`` (Debian: ``apt-get install linux-perf``). Each server of
``bench_servers`` named by --servers serves the churn column (50 clients, one connection
per request, the C generator) while ``perf record -a`` samples every CPU at 999 Hz with
call chains and one page fault in 50. Samples of the server's processes (its own
command name; the generator, perf and this script are other processes) are put in one
category each, by the first of these their call chain holds:

- page faults: ``asm_exc_page_fault``; after fork() that is mostly a page copied because
  parent or child wrote to it;
- exit: ``do_exit``, a child's end (its pages unmapped);
- fork: ``copy_process``, the parent's fork() (page tables copied), or ``ret_from_fork``;
- system calls: ``do_syscall_64``, any other;
- interpreter: the sampled instruction is in libpython;
- other: the rest (the C library, network interrupts, ...).

It prints, per server, connections/s and the microseconds of CPU per connection in each
category (medians of --repeat runs, interleaved as in ``bench_servers``), the page faults
per connection in the server's first process and in all its others (forked children;
a thread server has none), then each lab server's differences from the bare server of
its design. Figures, not assertions; run it on an otherwise quiet machine, since samples
are split by command name.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.bench_servers import (
    COLUMNS_BY_KEY,
    build_c,
    generator_argv,
    parse_sample,
    server_argvs,
    serving,
)
from tests.benchmarks.own_netns import rerun_in_own_netns

CATEGORIES = ("page faults", "exit", "fork", "system calls", "interpreter", "other")
# The first category whose function is in a sample's call chain; checked in this order.
_BY_FUNCTION = (
    ("asm_exc_page_fault", "page faults"),
    ("do_exit", "exit"),
    ("copy_process", "fork"),
    ("ret_from_fork", "fork"),
    ("do_syscall_64", "system calls"),
)
FREQUENCY = 999  # samples per second on each CPU
# One page fault in FAULT_PERIOD is recorded: recording each would add its own cost to
# every fault and so weigh most on the servers that fault most.
FAULT_PERIOD = 50
SETTLE_SECONDS = 0.5  # the generator's ramp, left out of the window
_HEADER = re.compile(r"^\s*(?P<comm>\S.*?)\s+(?P<pid>\d+)\s+(?P<event>[\w-]+)\S*:\s*(?P<rest>.*)$")
_FRAME = re.compile(r"^\s*[0-9a-f]+\s+(?P<sym>.*?)\s+\((?P<dso>[^()]*)\)\s*$")


@dataclass(frozen=True)
class PerfSample:
    comm: str
    pid: int
    event: str  # "cpu-clock" or "page-faults"
    frames: tuple[tuple[str, str], ...]  # (function, object file), innermost first


def parse_perf_script(lines: Iterable[str]) -> Iterator[PerfSample]:
    """Samples from ``perf script -F comm,pid,event,ip,sym,dso``: a header line, then (for
    call chains) one tab-indented frame per line and a blank line; a sample without a call
    chain has its one frame on the header line."""
    head: re.Match[str] | None = None
    frames: list[tuple[str, str]] = []
    for line in itertools.chain(lines, [""]):
        if line.startswith("\t") and head is not None:
            if frame := _FRAME.match(line):
                frames.append((frame["sym"], frame["dso"]))
            continue
        if head is not None and (not line.strip() or _HEADER.match(line)):
            yield PerfSample(head["comm"], int(head["pid"]), head["event"], tuple(frames))
            head, frames = None, []
        if match := _HEADER.match(line):
            head = match
            if frame := _FRAME.match(match["rest"]):
                frames.append((frame["sym"], frame["dso"]))


def category(frames: tuple[tuple[str, str], ...]) -> str:
    functions = {sym for sym, _ in frames}
    for function, name in _BY_FUNCTION:
        if function in functions:
            return name
    if frames and "libpython" in frames[0][1]:
        return "interpreter"
    return "other"


@dataclass(frozen=True)
class Profile:
    connections_per_s: float
    cpu_us: dict[str, float]  # per connection, by category
    faults_first: float  # per connection, in the server's first process
    faults_others: float  # per connection, in all its other processes


def profile(
    samples: Iterable[PerfSample], comm: str, first_pid: int, rate: float, window: float
) -> Profile:
    """Per-connection figures of the samples of processes named ``comm``, over a window of
    ``window`` seconds in which ``rate`` connections a second were served."""
    cpu: Counter[str] = Counter()
    faults: Counter[bool] = Counter()
    for sample in samples:
        if sample.comm != comm or sample.pid == os.getpid():
            continue
        if sample.event.startswith("cpu-clock"):
            cpu[category(sample.frames)] += 1
        elif sample.event.startswith("page-faults"):
            faults[sample.pid == first_pid] += FAULT_PERIOD
    per = max(rate * window, 1.0)
    return Profile(
        connections_per_s=rate,
        cpu_us={name: cpu[name] / FREQUENCY / per * 1e6 for name in CATEGORIES},
        faults_first=faults[True] / per,
        faults_others=faults[False] / per,
    )


def run_once(argv: list[str], c_dir: Path, duration: float) -> Profile | None:
    column = COLUMNS_BY_KEY["churn"]
    window = duration - 2 * SETTLE_SECONDS
    with serving(argv) as (server, port), tempfile.TemporaryDirectory() as tmp:
        if port is None:
            return None
        comm = Path(f"/proc/{server.pid}/comm").read_text().strip()
        data = Path(tmp) / "perf.data"
        generator = subprocess.Popen(
            generator_argv("c", c_dir, port, column, duration),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(SETTLE_SECONDS)
            _record(data, window)
            out, _ = generator.communicate(timeout=duration + 180)
        finally:
            if generator.poll() is None:  # perf failed: the load must not outlive the run
                generator.kill()
                generator.wait()
        rate = parse_sample(out, column).value or 0.0
        script = subprocess.run(
            ["perf", "script", "-i", str(data), "-F", "comm,pid,event,ip,sym,dso"],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
    return profile(parse_perf_script(script.stdout.splitlines()), comm, server.pid, rate, window)


def _record(data: Path, window: float) -> None:
    """Samples of every CPU, with call chains, and one page fault in FAULT_PERIOD."""
    subprocess.run(
        ["perf", "record", "--quiet", "-a", "-o", str(data),
         "-e", f"cpu-clock/freq={FREQUENCY},call-graph=fp/",
         "-e", f"page-faults/period={FAULT_PERIOD},call-graph=no/",
         "--", "sleep", f"{window:g}"],
        check=True, stdout=subprocess.DEVNULL, timeout=window + 60,
    )  # fmt: skip


def _median_profile(runs: list[Profile]) -> Profile:
    return Profile(
        statistics.median(r.connections_per_s for r in runs),
        {name: statistics.median(r.cpu_us[name] for r in runs) for name in CATEGORIES},
        statistics.median(r.faults_first for r in runs),
        statistics.median(r.faults_others for r in runs),
    )


def _row(label: str, p: Profile, rate: str) -> str:
    cells = [f"{sum(p.cpu_us.values()):>7.0f}"] + [f"{p.cpu_us[n]:>13.0f}" for n in CATEGORIES]
    faults = f"{p.faults_first:>10.0f}{p.faults_others:>10.0f}"
    return f"{label:22}{rate:>7}" + "".join(cells) + faults


def _print(names: list[str], medians: dict[str, Profile]) -> None:
    print(
        "\nper connection: microseconds of CPU, in all and by category; page faults in the"
        " server's\nfirst process (pf:first) and in all its others (pf:others)"
    )
    heads = "".join(f"{n:>13}" for n in CATEGORIES)
    print(f"{'server':22}{'conn/s':>7}{'total':>7}{heads}{'pf:first':>10}{'pf:others':>10}")
    for name in names:
        p = medians[name]
        print(_row(name, p, f"{p.connections_per_s:.0f}"))
    for name in names:
        bare = f"bare-{name.split('-', 1)[-1]}"
        if name.startswith("lab-") and bare in medians:
            mine, theirs = medians[name], medians[bare]
            diff = Profile(
                mine.connections_per_s - theirs.connections_per_s,
                {n: mine.cpu_us[n] - theirs.cpu_us[n] for n in CATEGORIES},
                mine.faults_first - theirs.faults_first,
                mine.faults_others - theirs.faults_others,
            )
            print(_row(f"{name} - {bare}", diff, f"{diff.connections_per_s:+.0f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="bare-fork,lab-fork")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    if shutil.which("perf") is None or os.geteuid() != 0:
        sys.exit("bench_churn_profile: needs root and perf (Debian: apt-get install linux-perf)")
    rerun_in_own_netns("tests.benchmarks.bench_churn_profile")
    names = args.servers.split(",")
    runs: dict[str, list[Profile]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-churn-profile-") as tmp:
        c_dir = Path(tmp)
        argvs = server_argvs(c_dir)
        unknown = sorted(set(names) - set(argvs))
        if unknown:
            sys.exit(f"bench_churn_profile: unknown server {', '.join(unknown)}")
        build_c(c_dir)
        for round_ in range(args.repeat):
            for name in names if round_ % 2 == 0 else names[::-1]:
                try:
                    found = run_once(argvs[name](0), c_dir, args.duration)
                except subprocess.CalledProcessError as exc:  # its message is on stderr
                    sys.exit(f"bench_churn_profile: {' '.join(exc.cmd[:2])} failed")
                print(f"round {round_ + 1}: {name}: {'failed' if found is None else 'done'}")
                if found is not None:
                    runs[name].append(found)
    _print([n for n in names if runs[n]], {n: _median_profile(r) for n, r in runs.items() if r})


if __name__ == "__main__":
    main()
