"""Checks that a results folder's run.json and summary.json have the shape their JSON
Schemas (shipped in the package) and typed readers say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from lab.report.record import SUMMARY_FILE, Summary
from lab.report.schemas import LAB
from lab.run.record import RUN_FILE, RunRecord

RUN_SCHEMA = LAB / "run" / "schemas" / "run.schema.json"
SUMMARY_SCHEMA = LAB / "report" / "schemas" / "summary.schema.json"


def _schema(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def assert_valid_results(folder: Path) -> None:
    """run.json (and summary.json, once written) validate and read back exactly."""
    run = json.loads((folder / RUN_FILE).read_text())
    jsonschema.validate(run, _schema(RUN_SCHEMA))
    assert RunRecord.from_json(run).to_json() == run
    if (folder / SUMMARY_FILE).is_file():
        summary = json.loads((folder / SUMMARY_FILE).read_text())
        jsonschema.validate(summary, _schema(SUMMARY_SCHEMA))
        assert Summary.from_json(summary).to_json() == summary
