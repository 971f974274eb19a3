"""Every TCP server against every hostile TCP client of the corpus, across a real network:
server in one namespace, client in another. Each server is started once per module and
faces the whole corpus; after each case it must still be whole (see ``Running.survives``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.programs.hostile_corpus import CORPUS
from lab.programs.hostile_io import Case
from lab.run.backends.base import Backend
from tests.hardening.conftest import SPECS, TCP_SERVERS, Running, start_server

TCP_CASES = [
    pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.heavy else [])
    for case in CORPUS
    if case.proto == "tcp"
]


@pytest.fixture(scope="module", params=TCP_SERVERS)
def tcp_server(request: pytest.FixtureRequest, lan: Backend) -> Iterator[Running]:
    running = start_server(lan, SPECS[request.param])
    yield running
    assert running.stop() == 0, running.log_lines()[-20:]


@pytest.mark.parametrize("case", TCP_CASES)
def test_tcp_server_survives_hostile_client(root: None, tcp_server: Running, case: Case) -> None:
    tcp_server.survives(case)
