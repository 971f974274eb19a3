"""Inputs the fuzzer (tests/fuzz/fuzz_topology.py) found crashing the topology reader, in
``fuzz_crashes/``: each must now be located problems, nothing else. The gateway one is the
fuzzer's own artifact; the NUL one is rebuilt the way the fuzzer made it (a run of NUL
bytes inserted into a shipped topology, which crashed as PyYAML's ReaderError)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.spec.topology import validate_file

CRASHES = Path(__file__).parent / "fuzz_crashes"


@pytest.mark.parametrize("path", sorted(CRASHES.iterdir()), ids=lambda p: p.name)
def test_a_crashing_input_is_now_located_problems(path: Path) -> None:
    problems = validate_file(path)
    assert problems
    for problem in problems:
        assert problem.startswith(f"{path}:"), problem


def test_a_gateway_beside_a_refused_subnet_is_not_a_key_error() -> None:
    problems = validate_file(CRASHES / "gateway-beside-a-bad-interface.yaml")
    assert ":10: networks.lan-a.subnet: " in problems[0]
    assert "not a private range" in problems[0]


def test_nul_bytes_are_located_where_they_are() -> None:
    path = CRASHES / "nul-bytes-inserted.yaml"
    (problem,) = validate_file(path)
    assert problem.startswith(f"{path}:21: (document): unacceptable character #x0000")
