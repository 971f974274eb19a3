"""The hostile clients ``lab grade`` turns on a submission: one small function per way a
client can misbehave, each followed by a normal client that must still be answered. Some
are this module's, lenient where a student's server may differ from the lab's own; the
rest are cases of the lab's corpus (``hostile_corpus``), judged as they are there where
their demand holds for any server, or only survived (``lenient``).

Run on a client node of a lab (standard library and ``lab.programs`` only)::

    python3 -m lab.programs.hostile CASE --host IP --port N --kind echo|dict|udp

It prints one JSON object ``{"case", "problems", "facts"}`` and exits 0 iff ``problems`` is
empty. A case demands little of the replies to the hostile input itself (a student's server
may answer a 1 MiB line in pieces or drop the connection); what it demands is that the
server survives: the normal exchange afterwards gets its reply. What the server must still
be on its own host (no zombie, no descriptor growth, bounded memory) is read there by the
grader. The cases that carry a protocol demand (a line in pieces, many lines in one segment)
check the replies too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import sys
import time

from lab.programs.hostile_corpus import CASES as CORPUS_CASES
from lab.programs.hostile_corpus import udp_vanish
from lab.programs.hostile_io import CaseFn, Report, Target, reset, udp_echo
from lab.programs.hostile_io import reply_to as corpus_reply
from lab.programs.hostile_tcp import (
    eof_at_once,
    half_close_then_silence,
    reset_mid_line,
    split_line_with_pauses,
)

IO_TIMEOUT = 10.0  # upper bound of one blocking call; never a speed expectation
# idle_1000's resets go out a hundred at a time: a reset lost from a burst of a thousand (a
# loaded host's network backlog holds 1,000 packets a CPU) would leave an iterative server
# waiting for ever on a connection that no one will close.
RESET_BATCH = 100
RESET_PAUSE = 0.01  # seconds


def reply_to(kind: str, line: bytes) -> bytes:
    """What a correct server answers to one request line (given without its ending)."""
    return corpus_reply(kind, line + b"\n")


def connect(t: Target) -> socket.socket:
    return socket.create_connection((t.host, t.port), timeout=IO_TIMEOUT)


def recv_until(sock: socket.socket, n_lines: int, limit: int = 1 << 20) -> bytes:
    """Read until ``n_lines`` newlines arrived, EOF, or ``limit`` bytes."""
    data = b""
    while data.count(b"\n") < n_lines and len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def drain(sock: socket.socket, seconds: float) -> None:
    """Read and drop whatever comes for a while (the server's replies to junk)."""
    sock.settimeout(0.2)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if not sock.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def send_junk(t: Target, data: bytes) -> None:
    """Send ``data`` while reading replies, then close: the server may answer or hang up."""
    with connect(t) as sock:
        sock.setblocking(False)
        view = memoryview(data)
        end = time.monotonic() + IO_TIMEOUT
        while view and time.monotonic() < end:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                view = view[sock.send(view) :]
            with contextlib.suppress(BlockingIOError, InterruptedError, ConnectionError):
                if sock.recv(65536) == b"":
                    break
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        sock.setblocking(True)
        drain(sock, 1.0)


def normal_exchange(t: Target, r: Report, label: str = "afterwards") -> None:
    """A well-behaved client: one line, its reply. Retried while the server still sheds
    what the case left (an iterative server finishes a queued connection first)."""
    line = b"HELLO" if t.kind == "udp" else b"hello"  # an upper-casing UDP echo agrees
    deadline = time.monotonic() + 20.0
    last = ""
    while time.monotonic() < deadline:
        try:
            if t.kind == "udp":
                got = udp_echo(t, line)
                if got == line:
                    return
                last = f"echo {got!r}"
            else:
                with connect(t) as sock:
                    sock.sendall(line + b"\n")
                    got = recv_until(sock, 1)
                if got == reply_to(t.kind, line):
                    return
                last = f"reply {got[:80]!r}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    r.problems.append(f"{label}, a normal client was not answered: {last}")


def line_1mib(t: Target, r: Report) -> None:
    send_junk(t, b"a" * (1 << 20) + b"\n")


def no_newline(t: Target, r: Report) -> None:
    send_junk(t, b"b" * (4 << 20))


def nul_bytes(t: Target, r: Report) -> None:
    send_junk(t, b"nul\x00in\x00line\n\x00\x00\x00\n")


def invalid_utf8(t: Target, r: Report) -> None:
    send_junk(t, b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\n")


def binary_junk(t: Target, r: Report) -> None:
    send_junk(t, os.urandom(256 << 10))


def lenient(case: str) -> CaseFn:
    """A corpus case whose demands are the lab's own servers' (an ERROR line, a close):
    run for what it does to the server, its findings kept as facts, not problems."""

    def run(t: Target, r: Report) -> None:
        strict = Report()
        CORPUS_CASES[case].run(t, strict)
        if strict.problems:
            r.facts["lab_servers_would_not"] = strict.problems
        r.facts.update(strict.facts)

    return run


def many_lines(t: Target, r: Report) -> None:
    """250 lines in one send: 250 replies, in order."""
    lines = [b"hello" if t.kind == "dict" else b"line%d" % i for i in range(250)]
    with connect(t) as sock:
        sock.sendall(b"".join(line + b"\n" for line in lines))
        got = recv_until(sock, len(lines))
    want = b"".join(reply_to(t.kind, line) for line in lines)
    count = got.count(b"\n")
    r.facts["replies"] = count
    r.expect(got == want, f"250 lines in one segment: {count} replies, not as sent")


def idle_1000(t: Target, r: Report) -> None:
    """1,000 connections that never send, held 2 s, then reset. Reset, not closed: a FIN
    the server's full accept queue dropped would leave it a connection no one closes."""
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    socks: list[socket.socket] = []
    try:
        for _ in range(1000):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect((t.host, t.port))
            socks.append(s)
        time.sleep(2.0)
    finally:
        for i, s in enumerate(socks):
            if i and i % RESET_BATCH == 0:
                time.sleep(RESET_PAUSE)
            reset(s)
    r.facts["opened"] = len(socks)


def churn(t: Target, r: Report) -> None:
    """1,000 connect/close cycles (a reset every other one)."""
    failed = 0
    for i in range(1000):
        try:
            sock = connect(t)
        except OSError:
            failed += 1
            continue
        if i % 2:
            reset(sock)
        else:
            sock.close()
    r.facts["failed_connects"] = failed


def udp_junk(t: Target, r: Report) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for payload in (b"", os.urandom(1472), b"\xff\xfe\x00", b"x" * 65507):
            with contextlib.suppress(OSError):
                sock.sendto(payload, (t.host, t.port))


def udp_burst(t: Target, r: Report) -> None:
    """2,000 datagrams whose echoes are never read."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(2000):
            with contextlib.suppress(OSError):
                sock.sendto(b"burst %d" % i, (t.host, t.port))


TCP_CASES: dict[str, tuple[CaseFn, str]] = {
    "line_1mib": (line_1mib, "a 1 MiB line"),
    "no_newline": (no_newline, "4 MiB without a newline"),
    "nul_bytes": (nul_bytes, "NUL bytes in lines"),
    "invalid_utf8": (invalid_utf8, "invalid UTF-8"),
    "binary_junk": (binary_junk, "256 KiB of random bytes"),
    "reset_mid_line": (reset_mid_line, "a reset mid-line"),
    "half_close": (half_close_then_silence, "a line, FIN, silence"),
    "split_line": (split_line_with_pauses, "a line in 4 segments"),
    "many_lines": (many_lines, "250 lines in one segment"),
    "idle_1000": (idle_1000, "1,000 idle connections"),
    "churn": (churn, "1,000 connect/close cycles"),
    "eof_at_once": (eof_at_once, "FIN before any data: the server closes too"),
    "vanish": (lenient("connect_and_vanish"), "20 clients SIGKILLed mid-line"),
    "never_reads": (lenient("never_reads"), "sends until stalled, never reads"),
}
UDP_CASES: dict[str, tuple[CaseFn, str]] = {
    "udp_junk": (udp_junk, "empty, binary and 65,507-byte datagrams"),
    "udp_burst": (udp_burst, "2,000 datagrams, echoes unread"),
    "udp_vanish": (udp_vanish, "200 senders gone before the echo"),
}
CASES = {**TCP_CASES, **UDP_CASES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab.programs.hostile")
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=["echo", "dict", "udp"], required=True)
    args = parser.parse_args(argv)
    target = Target(args.host, args.port, args.kind, serial=False)
    report = Report()
    try:
        CASES[args.case][0](target, report)
    except OSError as exc:
        # The hostile part may fail (a server that hangs up); the server's survival is what
        # counts, and that is asked next.
        report.facts["case_error"] = f"{type(exc).__name__}: {exc}"
    normal_exchange(target, report)
    print(json.dumps({"case": args.case, "problems": report.problems, "facts": report.facts}))
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
