"""summary.json as typed records: the verdict on one results folder.

:class:`Summary` is the whole file: the run's facts that a reader of the verdict needs
(from run.json), every scenario's checks, and the per-connection evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.evidence.folder import EvidenceProblem
from lab.evidence.records import TcpRecord, UdpRecord
from lab.run.record import MAX_RECORD_BYTES, NodeError, NodeRecord, check_version
from lab.spec.codec import from_json, json_schema, read_json_object, to_json
from lab.verdict.checks import Check

SUMMARY_FILE = "summary.json"
SUMMARY_SCHEMA_VERSION = 1


@dataclass
class ScenarioVerdict:
    """One scenario's checks; it passed if every check did."""

    name: str
    service: str
    passed: bool
    checks: list[Check]


@dataclass
class Summary:
    """The verdict on one results folder, saved as summary.json."""

    topology: str
    backend: str
    run_id: str
    started: str
    passed: bool
    schema_version: int = SUMMARY_SCHEMA_VERSION
    error: str | None = None
    failed_step: str | None = None
    interrupted: str | None = None
    node_errors: list[NodeError] = field(default_factory=list)
    teardown_errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    scenarios: list[ScenarioVerdict] = field(default_factory=list)
    connections: list[TcpRecord] = field(default_factory=list)
    udp_flows: list[UdpRecord] = field(default_factory=list)
    # Damaged or unreadable evidence files; a folder with any that fails_checks does not pass.
    evidence_problems: list[EvidenceProblem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_json(self)
        return {"schema_version": data.pop("schema_version"), **data}

    @classmethod
    def from_json(cls, data: Any, source: str = SUMMARY_FILE) -> Summary:
        check_version(data, source, SUMMARY_SCHEMA_VERSION, "run `lab report DIR` again")
        return from_json(cls, data, source)

    @classmethod
    def load(cls, out_dir: Path) -> Summary:
        path = out_dir / SUMMARY_FILE
        return cls.from_json(read_json_object(path, MAX_RECORD_BYTES), str(path))


def summary_schema() -> dict[str, Any]:
    """The JSON Schema of summary.json."""
    schema = json_schema(Summary, "socket-lab summary.json")
    top = schema["$defs"]["Summary"]
    top["properties"]["schema_version"] = {"const": SUMMARY_SCHEMA_VERSION}
    top["required"].insert(0, "schema_version")
    return schema
