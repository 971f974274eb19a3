"""``docker-compose up`` to the report next to ``lab run --backend docker``, same topology.

    python3 -m tests.benchmarks.bench_compose [--topology topologies/default.yaml] [--repeat 3]

Prints the median wall-clock seconds of: ``docker-compose up`` (every node, the report
service) plus ``lab report results/compose`` (report.html), and ``lab run --backend
docker`` of the same topology. The compose project is this script's own (``-p``) and is
taken down after every round.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.deploy.compose import compose_text
from lab.deploy.images import node_image, report_image
from lab.spec.topology import load_topology

FAILED: list[str] = []


def timed(argv: list[str], cwd: Path | None = None) -> float:
    """Seconds ``argv`` took; a failure (a run whose checks failed) is counted, not fatal."""
    start = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        FAILED.append(f"{argv[-1]}: {(done.stdout + done.stderr).strip().splitlines()[-1:]}")
    return time.monotonic() - start


def compose_round(topology: Path, image: str, report_image: str) -> float:
    """Seconds from ``docker-compose up`` to its end, report.html written by its report
    service (a run without the page is counted as failed)."""
    with tempfile.TemporaryDirectory(prefix="slab-bench-") as tmp:
        folder = Path(tmp)
        text = compose_text(load_topology(topology), image, report_image=report_image)
        (folder / "compose.yaml").write_text(text)
        base = ["docker-compose", "-p", f"slabbench{secrets.token_hex(3)}"]
        try:
            up = timed([*base, "up", "--no-color"], cwd=folder)
            if not (folder / "results/compose/report.html").exists():
                FAILED.append(f"{topology}: no report.html after up")
        finally:
            subprocess.run([*base, "down", "-v"], cwd=folder, capture_output=True, check=False)
    return up


def run_round(topology: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="slab-bench-") as tmp:
        argv = [sys.executable, "-m", "lab.cli", "run", str(topology), "--backend", "docker"]
        return timed([*argv, "--out", str(Path(tmp) / "out")])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topology", type=Path, default=Path("topologies/default.yaml"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    image, report = node_image(), report_image()
    if image is None or report is None:
        sys.exit("the images are not built: run `lab images build`")
    ups, runs = [], []
    for _ in range(args.repeat):
        ups.append(compose_round(args.topology, image, report))
        runs.append(run_round(args.topology))
    print(f"{args.topology} ({args.repeat} rounds, medians)")
    print(f"  docker-compose up, to report.html     {statistics.median(ups):6.1f} s")
    print(f"  lab run --backend docker              {statistics.median(runs):6.1f} s")
    for failure in FAILED:
        print(f"  failed: {failure}")


if __name__ == "__main__":
    main()
