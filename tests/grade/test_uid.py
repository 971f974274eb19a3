"""The graded server runs as a uid of its own, in no account (lab.programs.userprog)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.labcli import ROOT


def test_userprog_becomes_a_numeric_uid_and_gid(root: None, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    argv = [sys.executable, "-m", "lab.programs.userprog", "--dir", str(tmp_path)]
    argv += ["--user", "61234", "--", "sh", "-c", "id -u; id -g"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["61234", "61234"]
