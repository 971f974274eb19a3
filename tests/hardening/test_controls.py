"""Negative controls: the checks made after each hostile case do fail on servers that
leave zombies, leak descriptors or leak memory (else a passing corpus would mean little)."""

from __future__ import annotations

import pytest

from lab.programs.hostile_corpus import CASES
from lab.run.backends.base import Backend
from tests.hardening.conftest import ServerSpec, start_server

# The leaks below are permanent: a short wait for them to go away is enough.
SETTLE_SECONDS = 3.0

CONTROLS = [
    pytest.param(
        ServerSpec("no-reap", "lab.programs.fork_server", ("--no-reap",)),
        r"zombie children",
        id="fork-no-reap-zombies",
    ),
    pytest.param(
        ServerSpec("leaky-fds", "tests.hardening.leaky", ("--leak", "fds")),
        r"descriptors \d+ -> \d+",
        id="unclosed-descriptors",
    ),
    pytest.param(
        ServerSpec("leaky-memory", "tests.hardening.leaky", ("--leak", "memory")),
        r"VmRSS",
        id="memory-leak",
    ),
]


@pytest.mark.parametrize(("spec", "failure"), CONTROLS)
def test_the_checks_catch_a_broken_server(
    root: None, lan: Backend, spec: ServerSpec, failure: str
) -> None:
    server = start_server(lan, spec)
    server.settle_seconds = SETTLE_SECONDS
    try:
        with pytest.raises(AssertionError, match=failure):
            server.survives(CASES["nul_bytes"])
    finally:
        server.stop()
