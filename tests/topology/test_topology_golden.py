"""One broken file per error case, each with its exact expected problems (golden files).

To add a case: write ``bad/NAME.yaml`` (names use '-', so the file stem is a valid topology
name unless the case is about that) and ``bad/NAME.expected``, one problem per line, with
the file shown as ``bad/NAME.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.topology import load_topology, validate_file

HERE = Path(__file__).parent
BAD = sorted(p.stem for p in (HERE / "bad").glob("*.yaml"))


def test_every_case_has_a_golden_file_and_there_are_enough() -> None:
    goldens = sorted(p.stem for p in (HERE / "bad").glob("*.expected"))
    assert goldens == BAD
    assert len(BAD) >= 35


@pytest.mark.parametrize("name", BAD)
def test_bad_file_reports_exactly_the_expected_problems(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FILE in each problem is the path as the caller gave it: run from here, give bad/NAME.yaml.
    monkeypatch.chdir(HERE)
    expected = (HERE / "bad" / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    assert validate_file(Path("bad") / f"{name}.yaml") == expected


@pytest.mark.parametrize("name", BAD)
def test_bad_file_raises_topology_error_with_exit_code_2(name: str) -> None:
    path = HERE / "bad" / f"{name}.yaml"
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert caught.value.exit_code == 2
    assert caught.value.problems
    assert all(p.startswith(f"{path}:") for p in caught.value.problems)
    assert str(caught.value) == "\n".join(caught.value.problems)
