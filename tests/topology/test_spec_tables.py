"""The key tables of lab.spec.keys: the README generated from them, the JSON Schema built
from them, their defaults against the model's, and what validating imports."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lab.spec import docs, keys
from lab.spec.model import SERVICE_OPTIONS, Capture, Scenario, SshTarget
from lab.spec.schema import topology_schema
from tests.labcli import ROOT

HERE = Path(__file__).parent
SHIPPED = sorted((ROOT / "topologies").glob("*.yaml")) + sorted(
    (ROOT / "topologies" / "experiments").glob("*.yaml")
)
# Broken files whose problem a single mapping or value shows, so the schema sees it too.
REJECTED = (
    "unknown-top-key", "missing-required-top", "bad-name-shell", "port-range",
    "capture-filter-unsafe", "option-unknown", "udp-options", "scenario-missing-keys",
    "probe-unknown", "unknown-scenario-key",
)  # fmt: skip


def test_readme_tables_are_generated_from_the_declarations() -> None:
    text = docs.README.read_text(encoding="utf-8")
    assert text.count("<!-- generated: ") >= 10
    assert docs.render(text) == text, "run: python3 -m lab.spec.docs --write"


def test_render_replaces_a_stale_table_and_refuses_an_unknown_one() -> None:
    stale = "x\n<!-- generated: capture -->\n| old |\n<!-- end generated -->\ny\n"
    assert "`snaplen`" in docs.render(stale) and "| old |" not in docs.render(stale)
    with pytest.raises(KeyError):
        docs.render("<!-- generated: nope -->\n<!-- end generated -->")


@pytest.mark.parametrize(
    ("section", "model"),
    [(keys.SCENARIO, Scenario), (keys.CAPTURE, Capture), (keys.SSH, SshTarget)],
)
def test_declared_defaults_are_the_models(section: keys.Section, model: type) -> None:
    fields = {f.name: f.default for f in dataclasses.fields(model)}
    declared = [k for k in section.keys if k.default is not None]
    assert declared
    for key in declared:
        assert fields[key.name] == key.default, key.name


def test_every_service_option_is_declared_with_its_kind() -> None:
    kinds = {int: "integer", float: "number", bool: "boolean"}
    for options in SERVICE_OPTIONS.values():
        for name, (kind, _) in options.items():
            assert keys.OPTIONS[name].kind == kinds[kind]
    assert set(keys.OPTIONS.names) == {o for opts in SERVICE_OPTIONS.values() for o in opts}


def _validator() -> jsonschema.Draft202012Validator:
    schema = topology_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_topology_fits_the_schema(path: Path) -> None:
    errors = [e.message for e in _validator().iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("name", REJECTED)
def test_the_schema_rejects_broken_files(name: str) -> None:
    document: Any = yaml.safe_load((HERE / "bad" / f"{name}.yaml").read_text())
    assert list(_validator().iter_errors(document))


def test_lab_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from lab import cli

    assert cli.main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == topology_schema()
    assert printed["properties"]["nodes"]["additionalProperties"]["additionalProperties"] is False


def test_validating_imports_no_capture_container_or_ssh_library() -> None:
    code = (
        "import sys\nfrom lab import cli\n"
        "code = cli.main(['validate', 'topologies/default.yaml'])\n"
        "print(code, *sorted(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[out.index("0") - 1].endswith("scenarios)")  # validate's line, then exit code 0
    modules = set(out)
    assert "lab.spec.topology" in modules
    assert not {m.split(".")[0] for m in modules} & {"dpkt", "docker", "paramiko"}
    assert not any(m.startswith(("lab.run", "lab.evidence", "lab.verdict")) for m in modules)


def test_every_spec_module_is_under_400_lines() -> None:
    for path in (ROOT / "lab" / "spec").glob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path.name


def test_every_plain_scenario_key_reaches_the_model() -> None:
    """Each knob given a value other than its default arrives in the model unchanged."""
    from lab.spec.topology import load_topology_text

    chosen = {
        "concurrency": 3, "hold": 1.5, "half_close": True, "start_after": 0.25,
        "repeat": 4, "rcvbuf": 4096, "pause_reading": 2.0, "server_closes_after": 2, "watch": 30,
        "reply_timeout": 2.5,
    }  # fmt: skip
    assert set(chosen) == set(keys.SCENARIO_KNOBS)
    knobs = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in chosen.items())
    text = (
        "name: knobs\nnetworks: {lan: {subnet: 10.9.0.0/24}}\n"
        "nodes:\n  s: {interfaces: {lan: 10.9.0.1}}\n  c: {interfaces: {lan: 10.9.0.2}}\n"
        "services: {echo: {node: s, program: fork_server}}\n"
        "scenarios:\n  - name: x\n    service: echo\n    clients: [c]\n"
        "    send: [a]\n    expect: [A]\n" + knobs
    )
    (scenario,) = load_topology_text(text).scenarios
    assert {k: getattr(scenario, k) for k in chosen} == chosen
    assert all(
        getattr(Scenario("y", "echo", ("c",), ("a",), ("A",)), k) != v for k, v in chosen.items()
    )
