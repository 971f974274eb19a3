"""Inputs the fuzzer (tests/fuzz/fuzz_topology.py) found crashing the topology reader, kept
as they were found in ``fuzz_crashes/``: each must now be located problems, nothing else."""

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
