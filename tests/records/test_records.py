"""The typed run.json and summary.json: exact round trips, located errors for broken
records, schemas that are current and reject what the readers reject, and `lab report`
refusing a folder of another version."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lab.i18n import msg
from lab.report.record import ScenarioVerdict, Summary
from lab.report.schemas import SCHEMAS, schema_text
from lab.run.record import (
    ClientRecord,
    ClientResult,
    ConnectionOutcome,
    NodeRecord,
    ProbeResult,
    RunRecord,
    ScenarioRecord,
    ServiceRecord,
)
from lab.spec.codec import RecordError, from_json, json_schema, to_json
from lab.verdict.checks import Check
from tests.labcli import ROOT, lab
from tests.results_schema import RUN_SCHEMA, SUMMARY_SCHEMA, assert_valid_results


def _run() -> RunRecord:
    conn = ConnectionOutcome(0, "10.0.0.2:5000", ["hi"], ["HI"], None, False)
    client = ClientRecord(0, ClientResult("client", "10.0.0.1:9", [conn], 1, 0), "", None)
    service = ServiceRecord("s", "fork_server", 9, "tcp", {}, 42, "s/service-echo.log")
    return RunRecord(
        run_id="abc123",
        topology="t",
        backend="netns",
        started="2025-01-01T00:00:00Z",
        out_dir="/x",
        nodes={"s": NodeRecord({"lan": "eth0"})},
        services={"echo": service},
        scenarios={"x": ScenarioRecord("echo", {"c1": client})},
    )


def _run_doc() -> dict[str, Any]:
    return _run().to_json()


def test_a_record_made_by_the_run_reads_back_exactly() -> None:
    doc = _run_doc()
    assert next(iter(doc)) == "schema_version" and doc["schema_version"] == 1
    # Facts not known yet stay out of the file, as before the records were typed.
    assert "ended_before_stop" not in doc["services"]["echo"]
    assert "restarts" not in doc["scenarios"]["x"] and "host" not in doc["nodes"]["s"]
    assert RunRecord.from_json(doc).to_json() == doc
    jsonschema.validate(doc, json.loads(RUN_SCHEMA.read_text()))


def test_a_stopped_service_records_a_null_exit_status() -> None:
    record = _run()
    record.services["echo"].ended_before_stop = True
    doc = record.to_json()
    assert doc["services"]["echo"]["exit_status"] is None
    assert RunRecord.from_json(doc).services["echo"].ended_before_stop is True


def test_a_probe_result_reads_as_a_probe_result() -> None:
    doc = _run_doc()
    doc["scenarios"]["x"]["clients"]["c1"]["result"] = {
        "program": "probe",
        "probe": "refused",
        "server": "10.0.0.1:9",
        "connections": [
            {
                "index": 0,
                "local": None,
                "peer": None,
                "error": "ECONNREFUSED",
                "events": [{"call": "connect", "at": 0.001, "error": "ECONNREFUSED"}],
                "completed": True,
            }
        ],
        "error": "ECONNREFUSED",
        "completed": True,
    }
    result = RunRecord.from_json(doc).scenarios["x"].clients["c1"].result
    assert isinstance(result, ProbeResult) and result.error == "ECONNREFUSED"
    assert RunRecord.from_json(doc).to_json() == doc


BROKEN = [
    (("scenarios", "x", "clients", "c1", "result"), 7, "scenarios.x.clients.c1.result: "),
    (("services", "echo", "pid"), "42", "services.echo.pid: expected an integer"),
    (("services", "echo", "port"), True, "services.echo.port: expected an integer"),
    (("nodes", "s", "interfaces"), [], "nodes.s.interfaces: expected an object"),
    (("timings", "run"), "slow", "timings.run: expected a number"),
    (("scenarios", "x", "extra"), 1, "scenarios.x.extra: unexpected key"),
]


@pytest.mark.parametrize(("where", "value", "message"), BROKEN)
def test_a_broken_run_record_is_refused_where_it_is_broken(
    where: tuple[str, ...], value: Any, message: str
) -> None:
    doc = _run_doc()
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(RecordError, match=f"^run.json: {message}"):
        RunRecord.from_json(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(RUN_SCHEMA.read_text()))


def test_a_missing_required_key_is_named() -> None:
    doc = _run_doc()
    del doc["scenarios"]["x"]["clients"]["c1"]["stderr"]
    with pytest.raises(RecordError, match=r"clients\.c1\.stderr: missing \(required\)"):
        RunRecord.from_json(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(RUN_SCHEMA.read_text()))


@pytest.mark.parametrize("version", [None, 2])
def test_another_version_is_refused_with_what_to_do(version: int | None) -> None:
    doc = _run_doc()
    if version is None:
        del doc["schema_version"]
    else:
        doc["schema_version"] = version
    with pytest.raises(RecordError, match="run the topology again"):
        RunRecord.from_json(doc)


def _summary() -> Summary:
    verdict = ScenarioVerdict("x", "echo", True, [Check("replies", True, "1/1")])
    return Summary("t", "netns", "abc123", "2025-01-01T00:00:00Z", True, scenarios=[verdict])


def test_a_summary_reads_back_and_validates() -> None:
    doc = _summary().to_json()
    assert list(doc)[:2] == ["schema_version", "topology"]
    assert Summary.from_json(doc).to_json() == doc
    jsonschema.validate(doc, json.loads(SUMMARY_SCHEMA.read_text()))
    broken = copy.deepcopy(doc)
    broken["scenarios"][0]["checks"][0]["passed"] = "yes"
    with pytest.raises(RecordError, match=r"scenarios\[0\]\.checks\[0\]\.passed: expected"):
        Summary.from_json(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(SUMMARY_SCHEMA.read_text()))


def test_the_shipped_schemas_are_current() -> None:
    for path, make in SCHEMAS.items():
        stale = f"{path.name} is stale: run python3 -m lab.report.schemas"
        assert path.read_text() == schema_text(make), stale


@pytest.mark.broken_results
def test_the_results_helper_rejects_a_broken_folder(tmp_path: Path) -> None:
    doc = _run_doc()
    (tmp_path / "run.json").write_text(json.dumps(doc))
    assert_valid_results(tmp_path)
    doc["phases"] = "before"
    (tmp_path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(jsonschema.ValidationError):
        assert_valid_results(tmp_path)


@pytest.mark.broken_results
@pytest.mark.parametrize(("version", "said"), [(None, "has no schema_version"), (9, "9")])
def test_lab_report_refuses_a_folder_of_another_version(
    tmp_path: Path, version: int | None, said: str
) -> None:
    doc = _run_doc()
    del doc["schema_version"]
    if version is not None:
        doc = {"schema_version": version, **doc}
    (tmp_path / "run.json").write_text(json.dumps(doc))
    shutil.copyfile(ROOT / "topologies" / "default.yaml", tmp_path / "topology.yaml")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    done = lab("report", str(tmp_path), timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "run.json" in lines[0] and said in lines[0], done.stderr
    assert "run the topology again" in lines[0] and "Traceback" not in done.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_checks_message_is_no_part_of_its_json() -> None:
    said = Check.said("children reaped", True, msg("detail.no_after"))
    assert said.message is not None
    doc = {"name": "children reaped", "passed": True, "detail": "no 'after' snapshot"}
    assert to_json(said) == doc
    back = from_json(Check, doc, "summary.json")
    assert back == said and back.message is None
    with pytest.raises(RecordError, match="message: unexpected key"):
        from_json(Check, {**doc, "message": "detail.no_after"}, "summary.json")
    schema = json_schema(Check, "check")["$defs"]["Check"]
    assert sorted(schema["properties"]) == ["detail", "name", "passed"]
