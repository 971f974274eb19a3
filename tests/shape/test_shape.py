"""The package's shape: module size, function length, no import cycles, imports only
along the flow spec -> deploy -> run -> evidence -> verdict -> report -> cli."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.shape import (
    MAX_P90_FUNCTION_LINES,
    cycles,
    function_lengths,
    import_graph,
    layering_violations,
    oversized,
    percentile,
    read_modules,
)
from tests.labcli import ROOT

MODULES = read_modules(ROOT)


def test_no_module_over_the_limit() -> None:
    assert oversized(MODULES) == []


def test_no_import_cycle() -> None:
    assert cycles(import_graph(MODULES)) == []


def test_imports_follow_the_flow() -> None:
    assert layering_violations(MODULES) == []


def test_p90_function_length() -> None:
    assert percentile(function_lengths(MODULES), 0.9) <= MAX_P90_FUNCTION_LINES


# -- the measures themselves, on small made-up packages ------------------------------------


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    return make_tree(
        tmp_path,
        {
            "lab/__init__.py": "",
            "lab/errors.py": "import signal\n",
            "lab/spec/__init__.py": "",
            "lab/spec/model.py": "from lab.errors import LabError\n",
            "lab/run/__init__.py": "",
            "lab/run/runner.py": "from lab.spec import model\nfrom . import helper\n",
            "lab/run/helper.py": "def f():\n    from lab.run.runner import x\n",
            "lab/programs/__init__.py": "",
            "lab/programs/echo.py": "import socket\nfrom lab.programs import wrap\n",
            "lab/programs/wrap.py": "import os\n",
        },
    )


def test_a_function_level_import_makes_a_cycle(pkg: Path) -> None:
    graph = import_graph(read_modules(pkg))
    assert graph["lab.run.runner"] == {"lab.spec.model", "lab.run.helper"}
    assert cycles(graph) == [["lab.run.helper", "lab.run.runner"]]


def test_an_import_against_the_flow_is_found(pkg: Path) -> None:
    assert layering_violations(read_modules(pkg)) == []
    (pkg / "lab/spec/model.py").write_text("def g():\n    import lab.run.runner\n")
    assert layering_violations(read_modules(pkg)) == ["lab.spec.model imports lab.run.runner"]


def test_programs_import_the_standard_library_only(pkg: Path) -> None:
    (pkg / "lab/programs/wrap.py").write_text("import yaml\nfrom lab.errors import LabError\n")
    assert layering_violations(read_modules(pkg)) == [
        "lab.programs.wrap imports lab.errors",
        "lab.programs.wrap imports yaml",
    ]


def test_shared_modules_import_nothing_of_the_lab(pkg: Path) -> None:
    (pkg / "lab/errors.py").write_text("from lab.spec import model\n")
    assert "lab.errors imports lab.spec.model" in layering_violations(read_modules(pkg))


def test_sizes_and_lengths(pkg: Path) -> None:
    (pkg / "lab/run/big.py").write_text("def f():\n" + "    x = 1\n" * 400)
    modules = read_modules(pkg)
    assert oversized(modules) == [("lab.run.big", 401)]
    assert sorted(function_lengths(modules)) == [2, 401]
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert percentile([], 0.9) == 0
