"""One broken file per error case, each with its exact expected problems (golden files).

To add a case: write ``bad/NAME.yaml`` (names use '-', so the file stem is a valid topology
name unless the case is about that) and ``bad/NAME.expected``, one problem per line, with
the file shown as ``bad/NAME.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.spec.topology import load_topology, validate_file

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


def test_lab_run_of_every_bad_file_exits_2_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the CLI: each file's problems on stderr, exit 2, no results folder, and no
    session ever entered (a session is what creates namespaces, containers or remote dirs)."""
    from lab import cli
    from lab.run.session import Session

    def refuse(self: Session) -> Session:
        raise AssertionError(f"a session was started for {self.topology.name}")

    monkeypatch.setattr(Session, "__enter__", refuse)
    monkeypatch.chdir(HERE)
    for name in BAD:
        out = tmp_path / name
        code = cli.main(["run", f"bad/{name}.yaml", "--backend", "netns", "--out", str(out)])
        err = capsys.readouterr().err
        expected = (HERE / "bad" / f"{name}.expected").read_text(encoding="utf-8").splitlines()
        assert code == 2, (name, err)
        assert err.splitlines()[: len(expected)] == expected, name
        assert "nothing was created" in err
        assert not out.exists()
