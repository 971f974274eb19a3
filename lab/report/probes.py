"""A probe program's own calls (connect, send, recv ...), read from run.json and put on
the capture's clock so that a sequence diagram can draw them on the client's line."""

from __future__ import annotations

from collections.abc import Sequence

from lab.evidence.records import TcpRecord
from lab.report.markup import Call
from lab.run.record import ProbeConnection, ProbeEvent, ProbeResult, RunRecord


def _call_text(event: ProbeEvent) -> str | None:
    """A call as drawn on the client's line of the sequence diagram; None for one not
    drawn (a sleep)."""
    call, error = event.call, event.error
    if call in ("sleep", "sigaction", "reading"):
        return None
    if call == "read":  # libc's read() (the read-returns probe): its return value itself
        return f"read() → {event.bytes}" + (f" {error}" if error else "")
    if call == "recv":
        if event.eof:
            return "recv() → 0 bytes: EOF"
        if event.line is not None:
            line = event.line
            return f"recv() → {line[:40] + ('…' if len(line) > 40 else '')!r}"
        return f"recv() → {event.bytes} bytes"
    what = f"{call}({event.bytes} bytes)" if call == "send" and not error else f"{call}()"
    return f"{what} → {error}" if error else (f"{what} → ok" if call == "connect" else what)


def probe_calls(run: RunRecord | None) -> dict[str, list[Call]]:
    """The calls of each probe connection in run.json, by its local address, with the
    probe's own clock (seconds from its start)."""
    out: dict[str, list[Call]] = {}
    for sc in run.scenarios.values() if run is not None else ():
        for client in sc.clients.values():
            if not isinstance(client.result, ProbeResult):
                continue
            for conn in client.result.connections:
                if conn.local is not None:
                    out[conn.local] = _calls(conn)
    return out


def _calls(conn: ProbeConnection) -> list[Call]:
    calls = []
    for e in conn.events:
        text = _call_text(e)
        if text is not None:
            calls.append((e.at, text, bool(e.error)))
    return calls


def align_calls(conn: TcpRecord, calls: Sequence[Call]) -> list[Call]:
    """Calls moved onto the capture's clock: connect() returns just after the server's
    answer to the SYN (its SYN-ACK or RST), so that answer's time and the connect's are
    taken to be the same instant. An approximation, shown as ≈ on the page."""
    connect = next((at for at, text, _ in calls if text.startswith("connect(")), None)
    answer = next((s.t for s in conn.segments if s.sender == "server"), None)
    if connect is None or answer is None:
        return []
    # Just after the answer: connect() returns once the answer is in.
    return [(at - connect + answer + 1e-6, text, failed) for at, text, failed in calls]
