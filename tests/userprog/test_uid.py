"""A run's programs run as a uid of the run's own, in no account (lab.run.runuid,
lab.programs.userprog)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab.run.backends import backend_class
from lab.run.runuid import RUN_UIDS, claim_uid, lock_folder
from lab.run.session import Session
from lab.spec.model import Node, Topology
from tests.labcli import ROOT

# A session that brings nothing up: only its uid is wanted.
TOPOLOGY = Topology("uids", (), (Node("a", ()),))


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


def test_a_session_holds_its_uid_until_it_ends(root: None, tmp_path: Path) -> None:
    """Runs in one process one after another (a class graded in one go) must not pile up
    held uids: the session gives its lock back when it ends, not when the process does."""
    session = Session(TOPOLOGY, backend_class("netns"), tmp_path / "out")
    with session:
        uid = session.user_uid()
        assert session.user_uid() == uid  # claimed once per run
        other, lock = claim_uid(session.run_id, lock_folder())
        os.close(lock)
        assert other != uid
    again, lock = claim_uid(session.run_id, lock_folder())
    os.close(lock)
    assert again == uid
