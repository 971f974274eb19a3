"""A user's program starts with an environment of its own (lab.programs.userprog)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab.programs.userprog import DEFAULT_PATH
from tests.labcli import ROOT


def _env_seen(folder: Path, env: dict[str, str]) -> dict[str, str]:
    argv = [sys.executable, "-m", "lab.programs.userprog", "--dir", str(folder), "--", "env"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_only_paths_home_locale_and_the_runs_markers_reach_the_program(tmp_path: Path) -> None:
    """The operator's variables stay out (a token, a CI's settings): they are not the
    program's business, and their size would move where its stack ends."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "GITHUB_TOKEN": "secret",
        "LANG": "de_DE.UTF-8",
        "SOCKET_LAB_RUN": "abc123",
    }
    seen = _env_seen(tmp_path, env)
    assert seen == {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "LC_ALL": "C.UTF-8",
        "SOCKET_LAB_RUN": "abc123",
    }


def test_a_lab_started_without_path_still_finds_the_programs_tools(tmp_path: Path) -> None:
    seen = _env_seen(tmp_path, {"PYTHONPATH": str(ROOT)})
    assert seen["PATH"] == DEFAULT_PATH
