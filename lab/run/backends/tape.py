"""The recording format: what a backend was asked during one run, and what it answered.

A recording is a folder: ``index.json`` (this module writes and reads it, nothing else
does), ``topology.yaml`` (the topology that was run) and ``files/<node>/`` (the files each
``fetch`` copied out: captures and logs). The index holds the facts about every node
(work directory, interfaces, extra info), the nodes' Python, and every call in the order
it finished: foreground commands with their output, background starts, the calls made on
their handles, and fetches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lab.errors import BackendError, CommandTimeout

INDEX_FILE = "index.json"
TOPOLOGY_FILE = "topology.yaml"
FILES_DIR = "files"
FORMAT_VERSION = 1

# The exceptions a recorded call may have raised, by name: a fixed table, so a recording
# can only ever make the replay raise one of these.
ERRORS: dict[str, type[BackendError]] = {
    "BackendError": BackendError,
    "CommandTimeout": CommandTimeout,
}

ProcMethod = Literal["running", "wait", "stop", "signal"]
PROC_METHODS: tuple[ProcMethod, ...] = ("running", "wait", "stop", "signal")


@dataclass(frozen=True)
class Raised:
    """A BackendError (or subclass) that a call raised instead of returning."""

    kind: str
    message: str

    @classmethod
    def of(cls, exc: BackendError) -> Raised:
        kind = type(exc).__name__ if type(exc).__name__ in ERRORS else "BackendError"
        return cls(kind, str(exc))

    def exception(self) -> BackendError:
        return ERRORS.get(self.kind, BackendError)(self.message)


@dataclass(frozen=True)
class RunCall:
    """``Backend.run``: a foreground command and its outcome."""

    node: str
    argv: tuple[str, ...]
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    raised: Raised | None = None
    kind: Literal["run"] = "run"


@dataclass(frozen=True)
class SpawnCall:
    """``Backend.spawn``: a background start; ``proc`` numbers its handle in the recording."""

    node: str
    argv: tuple[str, ...]
    log: str
    proc: int
    pid: int = 0
    raised: Raised | None = None
    kind: Literal["spawn"] = "spawn"


@dataclass(frozen=True)
class ProcCall:
    """A call on a background handle: ``running`` (a bool), ``wait`` and ``stop`` (an exit
    status or None) or ``signal`` (None)."""

    proc: int
    method: ProcMethod
    result: bool | int | None = None
    raised: Raised | None = None
    kind: Literal["proc"] = "proc"


@dataclass(frozen=True)
class FetchCall:
    """``Backend.fetch``: the files it copied are under ``folder`` (relative to the recording)."""

    node: str
    remote_dir: str
    folder: str
    raised: Raised | None = None
    kind: Literal["fetch"] = "fetch"


Call = RunCall | SpawnCall | ProcCall | FetchCall


@dataclass
class NodeFacts:
    """What a backend said about a node when asked (not a call: the same answer each time)."""

    workdir: str = ""
    interfaces: dict[str, str] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)


@dataclass
class Recording:
    backend: str
    python: str = ""
    shares_process_table: bool = False
    nodes: dict[str, NodeFacts] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "version": FORMAT_VERSION,
            "backend": self.backend,
            "python": self.python,
            "shares_process_table": self.shares_process_table,
            "nodes": {name: _plain(facts) for name, facts in sorted(self.nodes.items())},
            "calls": [_plain(call) for call in self.calls],
        }
        text = json.dumps(data, indent=1, ensure_ascii=False)
        (folder / INDEX_FILE).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Recording:
        """Read ``folder/index.json``; a BackendError saying what is wrong if it is not one."""
        path = folder / INDEX_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {data.get('version')!r}, not {FORMAT_VERSION}")
            return cls(
                backend=str(data["backend"]),
                python=str(data["python"]),
                shares_process_table=bool(data.get("shares_process_table", False)),
                nodes={name: NodeFacts(**facts) for name, facts in data["nodes"].items()},
                calls=[_call(entry) for entry in data["calls"]],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"{path}: not a readable recording: {exc}") from exc


def _plain(obj: Any) -> dict[str, Any]:
    """A dataclass as JSON data; fields left at None are left out."""
    out: dict[str, Any] = {}
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        if value is None:
            continue
        if isinstance(value, Raised):
            value = {"kind": value.kind, "message": value.message}
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def _call(entry: dict[str, Any]) -> Call:
    fields = dict(entry)
    kind = fields.pop("kind")
    if "raised" in fields:
        fields["raised"] = Raised(**fields["raised"])
    if "argv" in fields:
        fields["argv"] = tuple(str(arg) for arg in fields["argv"])
    if kind == "run":
        return RunCall(**fields)
    if kind == "spawn":
        return SpawnCall(**fields)
    if kind == "proc":
        if fields.get("method") not in PROC_METHODS:
            raise ValueError(f"unknown handle method {fields.get('method')!r}")
        return ProcCall(**fields)
    if kind == "fetch":
        return FetchCall(**fields)
    raise ValueError(f"unknown call kind {kind!r}")
