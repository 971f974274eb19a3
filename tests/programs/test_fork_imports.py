"""What the fork server's process imports is what every one of its fork()s pays for."""

from __future__ import annotations

import subprocess
import sys

from tests.labcli import ROOT

# Standard modules that register an at-fork handler (os.register_at_fork) when imported:
# Python code that would run in every child, writing, and so copying, its pages.
AT_FORK_MODULES = ("threading", "random", "logging", "concurrent.futures.process")


def test_the_fork_server_imports_no_module_that_runs_code_at_every_fork() -> None:
    code = (
        "import sys, lab.programs.fork_server; "
        f"print(' '.join(m for m in {AT_FORK_MODULES!r} if m in sys.modules))"
    )
    # -S: as the lab runs its programs, without the site module's own imports.
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
