"""run.json as typed records: what one ``lab run`` did, raw facts only.

:class:`RunRecord` is the whole file; every part of it is a record class here. Facts that
are known only once a step has happened (a service's exit status, a node's ssh host, a
scenario's restarts) are left out of the file until then, as ``None`` here.

A folder written by another version of socket-lab is refused by :func:`load_run` with a
:class:`lab.spec.codec.RecordError` that says what to do, before anything reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.spec.codec import (
    RecordError,
    decode,
    from_json,
    json_schema,
    omit_if_none,
    read_json_object,
    to_json,
)

RUN_FILE = "run.json"
# Far above the run.json of a 250-node topology; a bound, so that a damaged or hostile
# file (a symlink to /dev/zero, gigabytes of digits) cannot exhaust memory.
MAX_RECORD_BYTES = 64 << 20
RUN_SCHEMA_VERSION = 1


@dataclass
class NodeRecord:
    """A node as the backend made it: its interface per network, and (ssh) its host."""

    interfaces: dict[str, str]
    host: str | None = field(default=None, metadata=omit_if_none())


@dataclass
class ServiceRecord:
    """A service as started, and how it ended: ``ended_before_stop`` (it was no longer
    running when the lab stopped it) and ``exit_status`` appear once it was stopped."""

    node: str
    program: str
    port: int
    protocol: str
    options: dict[str, int | bool | float]
    pid: int
    log: str  # "node/file" under the results folder
    restarted_as: list[int] | None = field(default=None, metadata=omit_if_none())
    ended_before_stop: bool | None = field(default=None, metadata=omit_if_none())
    exit_status: int | None = field(default=None, metadata=omit_if_none("ended_before_stop"))
    # A user program's: it did not stop on SIGTERM and was killed after the grace period.
    killed_after_grace: bool | None = field(default=None, metadata=omit_if_none())
    log_truncated: bool | None = field(default=None, metadata=omit_if_none())


@dataclass
class ConnectionOutcome:
    """One connection of the line client (or one socket of the UDP client)."""

    index: int
    local: str | None
    sent: list[str]
    replies: list[str]
    error: str | None
    closed_early: bool


@dataclass
class ClientResult:
    """What the line client (``client``) or the UDP client (``udp_echo``) printed."""

    program: str
    server: str
    connections: list[ConnectionOutcome]
    ok: int
    failed: int


@dataclass
class ProbeEvent:
    """One call a probe made; the facts other than ``call`` and ``at`` (seconds since the
    probe started) are there only where the call has them."""

    call: str
    at: float
    error: str | None = None  # errno name; present and None: the call succeeded
    detail: str | None = None
    bytes: int | None = None
    line: str | None = None
    eof: bool | None = None
    seconds: float | None = None
    attempt: int | None = None


@dataclass
class ProbeConnection:
    """The probe's one connection, in the line client's shape (index, local)."""

    index: int
    local: str | None
    peer: str | None
    error: str | None
    events: list[ProbeEvent]
    completed: bool


@dataclass
class ProbeResult:
    """What the probe program printed: ``error`` is the errno name its sequence ended
    with (None: no error), ``completed`` whether the sequence ran to its end."""

    program: str  # "probe"
    probe: str
    server: str
    connections: list[ProbeConnection]
    error: str | None
    completed: bool


@dataclass
class ClientRecord:
    """One client run of a scenario: its exit status and parsed output; ``error`` says
    why there is no result (the client could not run, died, or printed no JSON)."""

    returncode: int | None
    result: ClientResult | ProbeResult | None
    stderr: str
    error: str | None


@dataclass
class RestartRecord:
    """One restart of a scenario's service: the stop, the "restart-SCENARIO-N" snapshot
    of its node, and the new server, which listened or exited."""

    service: str
    reuseaddr: bool
    expect: str | None
    stopped_status: int | None
    snapshot: str
    pid: int
    log: str
    listening: bool
    listen_socket: str
    exit_status: int | None


@dataclass
class ImpairRecord:
    """One ``impair`` step as it happened: when (seconds after the scenarios started) the
    netem was applied and when the link was put back (None: never applied, or not yet),
    and any error."""

    node: str
    network: str
    direction: str
    netem: str  # as ``Netem.describe`` puts it
    applied: float | None = None
    restored: float | None = None
    error: str | None = field(default=None, metadata=omit_if_none())


@dataclass
class ScenarioRecord:
    """A scenario's clients by node, and its restarts once any were done."""

    service: str
    clients: dict[str, ClientRecord] = field(default_factory=dict)
    restarts: list[RestartRecord] | None = field(default=None, metadata=omit_if_none())
    impair: list[ImpairRecord] | None = field(default=None, metadata=omit_if_none())


def capture_log(interface: str) -> str:
    """The name of a capture's tcpdump log in the node's folder (``lab.programs.supervise``
    names it the same way): tcpdump says there what its kernel ring dropped."""
    return f"tcpdump-{interface}.log"


@dataclass
class CaptureRecord:
    """One tcpdump: its pcap is ``file`` in the node's folder."""

    node: str
    interface: str
    network: str
    file: str
    pid: int

    @property
    def log(self) -> str:
        return capture_log(self.interface)


@dataclass
class NodeError:
    """A node that could not be read in a step (gone mid-run)."""

    node: str
    step: str
    error: str


@dataclass
class WatchRecord:
    """One snapshot of a scenario's ``watch``: its phase name and when it began (seconds
    since the epoch, the clock the captures' timestamps use)."""

    phase: str
    time: float


@dataclass
class CleanedRecord:
    """``lab clean`` removed the run's objects: its owner was gone (``owner_alive`` False:
    the run was killed without tearing down) or was stopped with ``--force``. ``collected``
    lists what it copied from the nodes into the folder first, ``problems`` what it could
    not."""

    by: str
    at: str
    owner_pid: int
    owner_alive: bool
    collected: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class RunRecord:
    """The raw facts of one run, saved as run.json."""

    run_id: str
    topology: str
    backend: str
    started: str
    out_dir: str
    schema_version: int = RUN_SCHEMA_VERSION
    timings: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    services: dict[str, ServiceRecord] = field(default_factory=dict)
    scenarios: dict[str, ScenarioRecord] = field(default_factory=dict)
    captures: list[CaptureRecord] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    error: str | None = None
    teardown_errors: list[str] = field(default_factory=list)
    failed_step: str | None = None
    interrupted: str | None = None
    node_errors: list[NodeError] = field(default_factory=list)
    cleaned: CleanedRecord | None = field(default=None, metadata=omit_if_none())
    watch: list[WatchRecord] | None = field(default=None, metadata=omit_if_none())

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_json(self)
        # The version leads the file, where a reader of another version looks first.
        return {"schema_version": data.pop("schema_version"), **data}

    def save(self, out_dir: Path) -> None:
        # After an interrupt a client's thread may still record its outcome meanwhile
        # ("dictionary changed size during iteration"): take the picture again.
        for attempt in range(5):
            try:
                text = json.dumps(self.to_json(), indent=2, ensure_ascii=False)
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        write_atomically(out_dir / RUN_FILE, text)

    @classmethod
    def from_json(cls, data: Any, source: str = RUN_FILE) -> RunRecord:
        check_version(data, source, RUN_SCHEMA_VERSION, "run the topology again")
        return from_json(cls, data, source)


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file in the same folder, synced,
    then renamed over it. A process killed meanwhile leaves the previous version (and at
    worst a stray temporary file), never half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))  # mkstemp makes it 0600; keep what write_text gave
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _file_mode(path: Path) -> int:
    """The mode ``path`` has, or a new file would get under the current umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


def parse_client_output(stdout: str) -> ClientResult | ProbeResult:
    """A client program's ``--json`` output; ValueError (a RecordError or a JSON error)
    if it is not one."""
    result: ClientResult | ProbeResult = decode(
        ClientResult | ProbeResult, json.loads(stdout), "client output"
    )
    return result


def check_version(data: Any, source: str, version: int, remedy: str) -> None:
    """Refuse a record of another version with one line that says what to do."""
    got = data.get("schema_version") if isinstance(data, dict) else None
    if got is None:
        raise RecordError(f"{source} has no schema_version: made by an older socket-lab; {remedy}")
    if got != version:
        raise RecordError(
            f"{source} has schema_version {got!r}, this socket-lab reads {version}: "
            f"use the socket-lab that made it, or {remedy}"
        )


def load_run(out_dir: Path) -> RunRecord:
    """A results folder's run.json as a checked record."""
    path = out_dir / RUN_FILE
    return RunRecord.from_json(read_json_object(path, MAX_RECORD_BYTES), str(path))


def run_schema() -> dict[str, Any]:
    """The JSON Schema of run.json."""
    schema = json_schema(RunRecord, "socket-lab run.json")
    schema["$defs"]["RunRecord"]["properties"]["schema_version"] = {"const": RUN_SCHEMA_VERSION}
    schema["$defs"]["RunRecord"]["required"].insert(0, "schema_version")
    return schema
