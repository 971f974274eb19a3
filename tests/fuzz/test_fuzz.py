"""Every fuzz target, run for a bounded time: no input may raise anything but a LabError.
The figures (executions, the slowest input) are printed for the closing notes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from lab.spec.topology import load_topology_text
from tests.fuzz.harness import covered

HERE = Path(__file__).parent
TARGETS = sorted(p.stem for p in HERE.glob("fuzz_*.py"))


def fuzz_seconds(environ: Mapping[str, str]) -> int:
    """How long each target runs: a minute in CI (issue #12 asks about a minute per target;
    the suite's workers run some targets at once), longer when asked."""
    return int(environ.get("SOCKET_LAB_FUZZ_SECONDS", "60"))


SECONDS = fuzz_seconds(os.environ)


def test_each_target_runs_a_minute_unless_told() -> None:
    assert fuzz_seconds({}) == 60
    assert fuzz_seconds({"SOCKET_LAB_FUZZ_SECONDS": "600"}) == 600


def test_coverage_comes_from_the_labs_code_and_yaml_not_the_standard_library() -> None:
    import json

    import yaml.scanner

    assert covered(load_topology_text)
    assert covered(yaml.scanner.Scanner.fetch_more_tokens)
    assert not covered(json.dumps)
    assert not covered(re.compile)


@pytest.mark.slow
@pytest.mark.fuzz
@pytest.mark.timeout(SECONDS * 3 + 120)
@pytest.mark.parametrize("target", TARGETS)
def test_target_survives(target: str) -> None:
    with tempfile.TemporaryDirectory() as work:
        # A fresh corpus folder (the seeds are read, never written) and crashes kept there.
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                f"tests.fuzz.{target}",
                f"-max_total_time={SECONDS}",
                "-print_final_stats=1",
                "-rss_limit_mb=2048",
                "-timeout=10",
                f"-artifact_prefix={work}/",
                work,
            ],
            cwd=HERE.parent.parent,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    stats = dict(re.findall(r"stat::(\w+):\s+(\S+)", proc.stderr))
    print(
        f"{target}: {stats.get('number_of_executed_units', '?')} executions in {SECONDS} s, "
        f"slowest input {stats.get('slowest_unit_time_sec', '?')} s, "
        f"peak RSS {stats.get('peak_rss_mb', '?')} MiB"
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert int(stats.get("number_of_executed_units", "0")) > 0, proc.stderr[-2000:]
