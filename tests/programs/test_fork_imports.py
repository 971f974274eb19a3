"""What the fork server's process imports is what every one of its fork()s pays for: the
child runs each at-fork handler, fork() copies the page tables of every memory mapping and
the child's exit unmaps them (``tests/benchmarks/bench_fork.py``)."""

from __future__ import annotations

import subprocess
import sys

from tests.labcli import ROOT

# Standard modules that register an at-fork handler (os.register_at_fork) when imported:
# Python code that would run in every child, writing, and so copying, its pages.
AT_FORK_MODULES = ("threading", "random", "logging", "concurrent.futures.process")
# shutil loads zlib, bz2 and lzma: six shared objects, 30 memory mappings.
HEAVY_MODULES = ("shutil", "zlib", "bz2", "lzma")
# What the server does before it serves: import, and parse its arguments.
STARTUP = (
    "import sys\n"
    "from lab.programs import common, fork_server\n"
    "parser = common.tcp_server_parser('fork_server', 'test', 9999)\n"
    "parser.add_argument('--close-delay', type=float, default=0.0, metavar='S')\n"
    "common.parse_server_args(parser, ['--port', '0', '--close-delay', '1'])\n"
)


def test_the_fork_server_loads_no_module_that_weighs_on_every_fork() -> None:
    names = AT_FORK_MODULES + HEAVY_MODULES
    code = STARTUP + f"print(' '.join(m for m in {names!r} if m in sys.modules))"
    # -S: as the lab runs its programs, without the site module's own imports.
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
