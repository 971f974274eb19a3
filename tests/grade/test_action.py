"""The composite action and the README's example workflow: linted, and the action's own
script run here as far as it can be outside GitHub (the same commands, the same files)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.grade.util import STUDENT
from tests.labcli import ROOT

ACTION = ROOT / "action.yml"


def action_steps() -> list[dict[str, object]]:
    doc = yaml.safe_load(ACTION.read_text())
    assert doc["runs"]["using"] == "composite"
    steps: list[dict[str, object]] = doc["runs"]["steps"]
    return steps


def lab_step() -> dict[str, object]:
    return next(s for s in action_steps() if s.get("id") == "lab")


def test_every_run_step_is_bash_that_parses() -> None:
    scripts = [s for s in action_steps() if "run" in s]
    assert scripts
    for step in scripts:
        assert step["shell"] == "bash"  # a composite step must name its shell
        check = subprocess.run(["bash", "-n"], input=str(step["run"]), text=True)
        assert check.returncode == 0, step.get("name")


def test_inputs_reach_scripts_only_through_the_environment() -> None:
    """No ``${{ }}`` inside a script: an input is data, never code."""
    for step in action_steps():
        if "run" in step:
            assert "${{" not in str(step["run"]), step.get("name")


def test_the_readme_example_workflow_lints_clean(tmp_path: Path) -> None:
    actionlint = shutil.which("actionlint")
    assert actionlint is not None, "actionlint comes with the dev extras"
    readme = (ROOT / "README.md").read_text()
    section = readme.split("#### Grading in GitHub Actions", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "grade.yml").write_text(example.group(1))
    path = str(workflows / "grade.yml")
    lint = subprocess.run([actionlint, "-no-color", path], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # The example's inputs are the action's.
    used = set(yaml.safe_load(example.group(1))["jobs"]["grade"]["steps"][1]["with"])
    assert used <= set(yaml.safe_load(ACTION.read_text())["inputs"])


def run_lab_step(tmp_path: Path, **inputs: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The action's ``lab`` step, with the variables GitHub would give it."""
    out, summary = tmp_path / "github_output", tmp_path / "step_summary"
    env = {
        **os.environ,
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        **{f"LAB_{k.upper()}": v for k, v in inputs.items()},
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", str(lab_step()["run"])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    return proc, tmp_path


def test_an_unknown_command_is_refused(tmp_path: Path) -> None:
    proc, _ = run_lab_step(tmp_path, command="explode", path="x.c")
    assert proc.returncode == 2
    assert "::error::command must be grade or run, not 'explode'" in proc.stdout


@pytest.mark.slow
def test_the_lab_step_grades_and_writes_the_summary(root: None, tmp_path: Path) -> None:
    results = tmp_path / "results"
    sources = " ".join(str(STUDENT / f) for f in ("server.c", "wrap.c", "wrap.h"))
    proc, where = run_lab_step(
        tmp_path, command="grade", path=sources, **{"as": "fork"}, port="", weights="",
        time_limit="600", results=str(results),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (where / "github_output").read_text() == "exit-code=0\n"
    summary = (where / "step_summary").read_text()
    assert "### socket-lab: lab grade" in summary
    assert "children reaped" in summary and "PASS" in summary
    assert (results / "grade.html").is_file()
    assert (where / "lab-junit.xml").is_file()
