"""A run's programs run as a uid of the run's own, in no account (lab.run.runuid,
lab.programs.userprog)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab.run.runuid import RUN_UIDS, claim_uid
from tests.labcli import ROOT


def test_userprog_becomes_a_numeric_uid_and_gid(root: None, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    argv = [sys.executable, "-m", "lab.programs.userprog", "--dir", str(tmp_path)]
    argv += ["--user", "61234", "--", "sh", "-c", "id -u; id -g"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["61234", "61234"]


def test_runs_at_once_never_share_a_uid(tmp_path: Path) -> None:
    """Two runs whose ids point at the same uid: the second gets the next one while the
    first holds its lock; the lock goes with the descriptor."""
    first, lock = claim_uid("0", tmp_path)
    second, lock2 = claim_uid("0", tmp_path)
    try:
        assert RUN_UIDS[0] <= first < RUN_UIDS[1]
        assert second != first
    finally:
        os.close(lock2)
    os.close(lock)
    again, lock = claim_uid("0", tmp_path)
    os.close(lock)
    assert again == first
