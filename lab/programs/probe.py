"""Provoke the socket errors of the course on purpose, and report what happened.

Each subcommand runs one fixed sequence of calls against a server and prints, with
``--json``, one JSON object: every call made (``events``), the local and peer addresses,
and ``error``, the errno name of the call that failed (null if none did). The line servers
(fork, thread, iterative, dict) answer a line longer than ``MAX_LINE`` with an ERROR line
and close first, which the sequences below use to make the server the active closer.

- ``refused``: connect to a port nothing listens on. The peer's kernel answers the SYN
  with RST+ACK and connect() fails with ECONNREFUSED.
- ``epipe``: Unix Network Programming's write to a reset peer. Send an over-long line,
  read the ERROR line and the server's close (EOF); then write, pause, write again, until
  a write fails. The first write after the server has closed draws a RST; the next one
  fails with EPIPE (SIGPIPE is ignored, so write() returns the error instead of killing
  the process). Writes the server still reads while it drains are reported too.
- ``long-line``: send the over-long line, read the ERROR line and the server's close, then
  close normally: the server closed first, so it ends in TIME_WAIT on its own port.

Exit status 0 when the sequence ran to its end (for ``refused``: connect returned; for
``epipe``: a write failed), 1 when it could not (say connect failed for ``epipe``, or the
server never closed), 2 for bad arguments. Judging whether the error is the expected one
is left to whoever reads the report.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.programs import read_probe
from lab.programs.common import port_number, positive_int
from lab.programs.wrap import (
    MAX_LINE,
    CallError,
    address_text,
    connect,
    errno_text,
    local_text,
    socket_tcp,
    writen,
)

# One byte over the servers' limit, and no newline: the server refuses it and closes.
LONG_LINE = b"x" * (MAX_LINE + 1)
AFTER_CLOSE = b"written after the server closed\n"


@dataclass
class Report:
    """What one probe did, call by call."""

    probe: str
    server: str
    local: str | None = None
    peer: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # errno name of the failed call
    completed: bool = False
    started: float = field(default_factory=time.monotonic)

    def event(self, call: str, **facts: Any) -> None:
        at = round(time.monotonic() - self.started, 3)
        self.events.append({"call": call, "at": at, **facts})

    def failed(self, call: str, exc: OSError, **facts: Any) -> None:
        text = errno_text(exc)
        self.error = text.split(" ")[0]
        self.event(call, error=self.error, detail=f"{call} {self.server}: {text}", **facts)

    def as_json(self) -> dict[str, Any]:
        # "connections" has the line client's shape (index, local), so the evidence of
        # a probe is found the same way as a client's: by its local port.
        conn = {"index": 0, "local": self.local, "peer": self.peer, "error": self.error}
        return {
            "program": "probe",
            "probe": self.probe,
            "server": self.server,
            "connections": [{**conn, "events": self.events, "completed": self.completed}],
            "error": self.error,
            "completed": self.completed,
        }


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    timeout: float
    pause: float
    attempts: int


def _open(opts: Options, report: Report) -> socket.socket | None:
    """socket + connect; the local port is reported even when connect fails (the SYN
    left from it, which is how the capture is matched to this probe)."""
    try:
        sock = socket_tcp()
    except CallError as err:
        report.failed("socket", err.cause)
        return None
    sock.settimeout(opts.timeout)
    try:
        connect(sock, opts.host, opts.port)
    except CallError as err:
        report.local = local_text(sock)
        report.failed("connect", err.cause)
        sock.close()
        return None
    report.local = local_text(sock)
    report.peer = address_text(opts.host, opts.port)
    report.event("connect", error=None)
    return sock


def _until_server_closes(sock: socket.socket, report: Report) -> bool:
    """Send the over-long line; read the server's reply lines until its EOF. True if the
    server closed (a recv returned 0 bytes)."""
    try:
        report.event("send", bytes=writen(sock, LONG_LINE), error=None)
    except OSError as exc:
        report.failed("send", exc, bytes=0)
        return False
    pending = b""
    while True:
        try:
            data = sock.recv(65536)
        except OSError as exc:
            report.failed("recv", exc, bytes=0)
            return False
        if not data:
            if pending:
                report.event("recv", line=pending.decode("utf-8", "replace"))
            report.event("recv", bytes=0, eof=True)
            return True
        pending += data
        while b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            report.event("recv", line=line.decode("utf-8", "replace"))


def probe_refused(opts: Options, report: Report) -> None:
    sock = _open(opts, report)
    if sock is None:
        report.completed = report.error is not None and report.events[-1]["call"] == "connect"
        return
    sock.close()  # connected: something listens there after all (the report says so)
    report.event("close")
    report.completed = True


def probe_epipe(opts: Options, report: Report) -> None:
    sock = _open(opts, report)
    if sock is None:
        return
    with sock:
        if not _until_server_closes(sock, report):
            return
        for attempt in range(opts.attempts):
            # The server drains what follows its ERROR line for a moment before closing;
            # a write it still reads draws no RST, so write again after each pause.
            report.event("sleep", seconds=opts.pause)
            time.sleep(opts.pause)
            try:
                report.event("send", bytes=sock.send(AFTER_CLOSE), error=None, attempt=attempt)
            except OSError as exc:
                report.failed("send", exc, bytes=0, attempt=attempt)
                report.completed = True
                return


def probe_long_line(opts: Options, report: Report) -> None:
    sock = _open(opts, report)
    if sock is None:
        return
    with sock:
        if not _until_server_closes(sock, report):
            return
    report.event("close")
    report.completed = True


def probe_read_returns(opts: Options, report: Report) -> None:
    """read()'s outcomes, one after the other (lab.programs.read_probe)."""
    sock = _open(opts, report)
    if sock is None:
        return
    with sock:
        report.completed = read_probe.run(sock, report, opts.timeout)
    report.event("close")


PROBES: dict[str, Callable[[Options, Report], None]] = {
    "refused": probe_refused,
    "epipe": probe_epipe,
    "long-line": probe_long_line,
    "read-returns": probe_read_returns,
}


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m lab.programs.probe",
        description="Provoke ECONNREFUSED, EPIPE or a server-side TIME_WAIT; report each call.",
    )
    parser.add_argument("probe", choices=sorted(PROBES), help="the sequence to run")
    parser.add_argument("--host", required=True, help="server address")
    parser.add_argument("--port", type=port_number, default=9999, help="server port (9999)")
    parser.add_argument(
        "--timeout", type=_positive_float, default=10.0, help="seconds per connect/recv (10)"
    )
    parser.add_argument(
        "--pause", type=_positive_float, default=0.5, help="epipe: seconds between writes (0.5)"
    )
    parser.add_argument(
        "--attempts", type=positive_int, default=20, help="epipe: writes at most (20)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _human(report: Report) -> str:
    lines = []
    for e in report.events:
        facts = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("call", "at"))
        lines.append(f"{e['at']:7.3f} {e['call']} {facts}".rstrip())
    lines.append(f"error: {report.error or 'none'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Python already ignores SIGPIPE; said here because the epipe probe depends on it.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    opts = Options(args.host, args.port, args.timeout, args.pause, args.attempts)
    report = Report(args.probe, address_text(args.host, args.port))
    PROBES[args.probe](opts, report)
    text = json.dumps(report.as_json(), ensure_ascii=False) if args.json else _human(report)
    print(text, flush=True)
    return 0 if report.completed else 1


if __name__ == "__main__":
    sys.exit(main())
