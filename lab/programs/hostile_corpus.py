"""The hostile-client corpus: every way a client can misbehave that the lab knows, as a
table (``CORPUS``) of small functions. The lab's own servers are held to all of it by the
tests (tests/hardening); ``lab grade`` runs a part of it on a submission (``hostile``).

Run on the client node of a lab (standard library and ``lab.programs`` only)::

    python3 -m lab.programs.hostile_corpus CASE --host IP --port N --kind echo|dict|udp [--serial]

It prints one JSON object ``{"case", "problems", "facts"}`` and exits 0 iff ``problems``
is empty: what the client itself saw go wrong (a wrong reply, no ERROR line, a connection
that never closed). What the server must still be afterwards (answering, no zombie, no
leaked descriptor, bounded memory) is checked from outside.

Adding a case is one function and one entry in ``CORPUS``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import select
import socket
import sys
import time

from lab.programs.hostile_io import Case, CaseFn, Report, Target, udp_echo, udp_socket
from lab.programs.hostile_tcp import (
    binary_garbage,
    churn_2000,
    close_unread_replies,
    connect_and_vanish,
    crlf_lines,
    empty_lines,
    eof_at_once,
    half_close_then_silence,
    invalid_utf8,
    line_1mib,
    line_at_limit,
    line_over_limit,
    many_lines_one_segment,
    never_reads,
    no_newline_ever,
    nul_bytes,
    one_byte_per_segment,
    pipeline_1mib,
    reset_before_accept,
    reset_mid_line,
    slowloris_1000,
    slowloris_fat,
    split_line_with_pauses,
    syn_then_rst,
    telnet_iac,
    urgent_data,
)  # fmt: skip

# -- UDP cases -------------------------------------------------------------------------------


def udp_oversized(t: Target, r: Report) -> None:
    """The largest IPv4 UDP payload, 65507 bytes: 45 fragments on a 1500-byte MTU."""
    payload = random.Random(2).randbytes(65507)
    got = udp_echo(t, payload)
    r.expect(got == payload, f"65507-byte datagram: echo of {None if got is None else len(got)}")


def udp_empty(t: Target, r: Report) -> None:
    got = udp_echo(t, b"")
    r.expect(got == b"", f"empty datagram: echo {got!r}")


def udp_binary(t: Target, r: Report) -> None:
    rng = random.Random(3)
    for size in (1, 2, 255, 1472, 1473, 9000):
        payload = b"\x00" + rng.randbytes(size - 1)
        got = udp_echo(t, payload)
        r.expect(got == payload, f"{size}-byte binary datagram: wrong or no echo")


def udp_vanish(t: Target, r: Report) -> None:
    """200 senders close before the echo: the server's replies draw ICMP port unreachable."""
    for i in range(200):
        with udp_socket() as sock:
            sock.sendto(b"gone %d" % i, (t.host, t.port))


def udp_burst_unread(t: Target, r: Report) -> None:
    """2,000 datagrams of 1 KiB sent at once, the echoes left unread until the end."""
    with udp_socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for i in range(2000):
            sock.sendto(b"%04d" % i + b"." * 1020, (t.host, t.port))
        got = 0
        with contextlib.suppress(TimeoutError):
            while sock.recvfrom(2048):
                got += 1
                sock.settimeout(0.5)
    r.facts["echoes_read"] = got
    r.expect(got > 0, "no echo at all after a burst")


def udp_many_senders(t: Target, r: Report) -> None:
    """500 sockets at once: each must get back its own datagram, to its own port. A burst
    this size can overflow the server's receive buffer, so the unanswered ones resend, in
    up to 10 rounds."""
    socks = {i: udp_socket() for i in range(500)}
    wrong: list[int] = []
    try:
        pending = dict(socks)
        for _ in range(10):
            for i, sock in pending.items():
                sock.sendto(b"sender %d" % i, (t.host, t.port))
            pending = collect_echoes(pending, wrong, deadline=time.monotonic() + 1.0)
            if not pending:
                break
        r.expect(not pending, f"{len(pending)} of 500 senders never got an echo")
        r.expect(not wrong, f"senders {wrong[:10]} got someone else's datagram")
    finally:
        for sock in socks.values():
            sock.close()


def collect_echoes(
    pending: dict[int, socket.socket], wrong: list[int], deadline: float
) -> dict[int, socket.socket]:
    """Read the echoes that arrive before ``deadline``; the senders still waiting."""
    waiting = dict(pending)
    by_sock = {sock: i for i, sock in waiting.items()}
    while waiting and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(list(waiting.values()), [], [], left)
        for sock in ready:
            i = by_sock[sock]
            data, _ = sock.recvfrom(2048)
            if data != b"sender %d" % i:
                wrong.append(i)
            del waiting[i]
    return waiting


# -- the corpus ------------------------------------------------------------------------------

RESET = r"^close \S+ \S+ bytes_in=\d+ bytes_out=\d+ reset$"
TOO_LONG = r"^close \S+ \S+ bytes_in=\d+ bytes_out=\d+ line-too-long$"


def tcp(run: CaseFn, what: str, *, log: str | None = None, heavy: bool = False) -> Case:
    """A TCP case, named as its function is."""
    return Case(run.__name__, "tcp", run, what, heavy=heavy, log=log)


def udp(run: CaseFn, what: str) -> Case:
    """A UDP case, named as its function is."""
    return Case(run.__name__, "udp", run, what)


CORPUS: tuple[Case, ...] = (
    tcp(line_1mib, "a 1 MiB line", log=TOO_LONG),
    tcp(line_over_limit, "MAX_LINE+1 bytes", log=TOO_LONG),
    tcp(line_at_limit, "MAX_LINE and MAX_LINE-1 bytes"),
    tcp(no_newline_ever, "8 MiB without a newline", log=TOO_LONG),
    tcp(nul_bytes, "NUL bytes in lines"),
    tcp(invalid_utf8, "invalid UTF-8 sequences"),
    tcp(binary_garbage, "256 KiB of random bytes"),
    tcp(telnet_iac, "telnet IAC negotiation and interrupt"),
    tcp(crlf_lines, "CRLF and lone CR line endings"),
    tcp(empty_lines, "1000 empty lines"),
    tcp(one_byte_per_segment, "TCP_NODELAY, 1-byte sends"),
    tcp(split_line_with_pauses, "a line in 4 pieces"),
    tcp(many_lines_one_segment, "250 lines in 1 segment"),
    tcp(pipeline_1mib, "100,000 lines without waiting"),
    tcp(urgent_data, "an MSG_OOB byte mid-line"),
    tcp(reset_mid_line, "SO_LINGER 0 close mid-line", log=RESET),
    tcp(reset_before_accept, "200 resets right after connect"),
    tcp(half_close_then_silence, "a line, FIN, silence"),
    tcp(eof_at_once, "FIN before any data"),
    tcp(connect_and_vanish, "20 clients SIGKILLed mid-line"),
    tcp(never_reads, "sends until stalled, never reads", log=RESET),
    tcp(close_unread_replies, "close with echoes unsent"),
    tcp(syn_then_rst, "50 raw SYNs, the SYN-ACKs reset"),
    tcp(slowloris_1000, "1000 idle half requests", heavy=True),
    tcp(slowloris_fat, "300 lines held just under MAX_LINE", heavy=True),
    tcp(churn_2000, "2000 connect/close cycles", heavy=True),
    udp(udp_oversized, "a 65507-byte datagram"),
    udp(udp_empty, "an empty datagram"),
    udp(udp_binary, "binary datagrams around the MTU"),
    udp(udp_vanish, "200 senders gone before the echo"),
    udp(udp_burst_unread, "2000 datagrams, echoes unread"),
    udp(udp_many_senders, "500 senders at once"),
)
CASES = {case.name: case for case in CORPUS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab.programs.hostile_corpus")
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=["echo", "dict", "udp"], required=True)
    parser.add_argument("--serial", action="store_true", help="one connection at a time")
    args = parser.parse_args(argv)
    target = Target(args.host, args.port, args.kind, args.serial)
    report = Report()
    try:
        CASES[args.case].run(target, report)
    except OSError as exc:
        report.problems.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"case": args.case, "problems": report.problems, "facts": report.facts}))
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
