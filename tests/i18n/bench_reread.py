"""Benchmark: what putting a topology's problems into Chinese costs (each English problem
read back by the catalogue after its location), against printing them in English, for
files with 10, 100 and 1,000 problems; and lab grade's evidence column.

    python3 -m tests.i18n.bench_reread [--repeat 7]

Prints medians and their ratio, from one run; figures only, nothing here fails on speed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from functools import partial

from lab.errors import TopologyError
from lab.i18n import using
from lab.spec.topology import load_topology_text


def bad_file(problems: int) -> str:
    """Nodes whose addresses are outside their network, and names that are not names:
    two kinds of problem, half each."""
    lines = ["networks: {lan: {subnet: 10.77.0.0/16}}", "nodes:"]
    for i in range(problems // 2):
        lines.append(f"  n{i:04d}: {{interfaces: {{lan: 10.78.{i // 200}.{i % 200 + 10}}}}}")
        lines.append(f"  Bad_{i:04d}: {{interfaces: {{lan: 10.77.{i // 200}.{i % 200 + 10}}}}}")
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
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"the problems' lines, median of {args.repeat} (milliseconds)")
    print(f"{'problems':>9} {'load':>9} {'en':>9} {'zh':>9} {'zh/load':>8}")
    for count in (10, 100, 1000):
        text = bad_file(count)
        try:
            load_topology_text(text)
        except TopologyError as exc:
            error = exc
        assert len(error.problems) >= count, len(error.problems)

        def zh(error: TopologyError = error) -> list[str]:
            with using("zh"):
                return error.lines()

        load = median_ms(partial(_problems, text), args.repeat)
        en = median_ms(error.lines, args.repeat)
        chinese = median_ms(zh, args.repeat)
        print(f"{count:>9} {load:>9.1f} {en:>9.2f} {chinese:>9.1f} {chinese / load:>8.2f}")


def _problems(text: str) -> None:
    with contextlib.suppress(TopologyError):
        load_topology_text(text)


if __name__ == "__main__":
    main()
