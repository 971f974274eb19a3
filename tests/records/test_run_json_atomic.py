"""run.json is replaced whole: a `lab run` killed while writing it (it is rewritten at
every step) leaves the previous version, never a truncated file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Saves a small record, then a large one under a file size limit that the kernel enforces
# by killing the writer (SIGXFSZ) part-way through the file: a kill mid-write, on cue.
WRITER = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; the kernel's default kills
from pathlib import Path
from lab.run.record import NodeError, RunRecord
out = Path(sys.argv[1])
record = RunRecord("abcdef", "big", "netns", "2026-01-01T00:00:00Z", str(out))
record.save(out)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
record.node_errors = [NodeError(f"n{i}", "snapshot: during", "x" * 200) for i in range(2000)]
record.save(out)
"""


@pytest.mark.broken_results  # the folder holds only the record, no evidence
def test_a_run_killed_while_writing_run_json_leaves_the_previous_one(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path)], capture_output=True)
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr.decode()
    data = json.loads((tmp_path / "run.json").read_text())  # whole, not cut at 64 KiB
    assert data["run_id"] == "abcdef" and data["node_errors"] == []
