"""The UDP echo server against every hostile UDP client of the corpus, across a real
network; after each case it must still be whole (see ``Running.survives``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.programs.hostile_corpus import CORPUS
from lab.programs.hostile_io import Case
from lab.run.backends.base import Backend
from tests.hardening.conftest import SPECS, Running, start_server

UDP_CASES = [
    pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.heavy else [])
    for case in CORPUS
    if case.proto == "udp"
]


@pytest.fixture(scope="module")
def udp_server(lan: Backend) -> Iterator[Running]:
    running = start_server(lan, SPECS["udp"])
    yield running
    assert running.stop() == 0, running.log_lines()[-20:]


@pytest.mark.parametrize("case", UDP_CASES)
def test_udp_server_survives_hostile_client(root: None, udp_server: Running, case: Case) -> None:
    udp_server.survives(case)
