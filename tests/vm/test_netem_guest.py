"""The tests that need the kernel's netem qdisc, run for real: in the netem guest (a Debian
kernel under QEMU, tests/vm/guest.py) when the host's own kernel has no netem, as on the
project's own machines. Inside, the netns backend's qdisc test and the four impaired-link
experiments run as they would on a host with netem, and nothing of them may skip."""

from __future__ import annotations

import re
import sys

import pytest

from tests.conftest import require
from tests.labcli import ROOT
from tests.vm.guest import guest_env, needs, run_in_guest

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.exclusive]

EXPERIMENTS = ("rtt", "slow-start", "reorder", "retransmission")
IN_GUEST = [
    "tests/netem/test_netem_netns.py",
    "tests/experiments/test_experiments.py::test_experiment_passes",
]


def outcome_counts(pytest_output: str) -> dict[str, int]:
    """``{"passed": 7}`` from pytest's last line, e.g. ``7 passed, 2 deselected in 98.1s``."""
    lines = [line for line in pytest_output.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last) if word != "in"}


@pytest.mark.timeout(1500)
def test_netem_tests_pass_in_a_guest_kernel_with_netem() -> None:
    reason = needs()
    require(reason is None, reason or "")
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
            "-m", "not docker", *IN_GUEST]  # fmt: skip
    extra = {"CI": "true", "SOCKET_LAB_EXPERIMENTS": ",".join(EXPERIMENTS)}
    run = run_in_guest(argv, cwd=ROOT, env=guest_env(extra), timeout=1200)
    shown = f"{run.error}\n{run.output[-6000:]}\n-- console --\n{run.console[-2000:]}"
    assert run.returncode == 0, shown
    # Three qdisc tests and one run per experiment, every one of them run, none skipped
    # (the Docker runs of the experiments are deselected: the guest has no engine).
    counts = outcome_counts(run.output)
    counts.pop("deselected", None)
    assert counts == {"passed": 3 + len(EXPERIMENTS)}, shown
