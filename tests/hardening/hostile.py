"""The hostile-client corpus: one small function per way a client can misbehave.

Run on the client node of a lab (standard library and ``lab.programs`` only)::

    python3 -m tests.hardening.hostile CASE --host IP --port N --kind echo|dict|udp [--serial]

It prints one JSON object ``{"case", "problems", "facts"}`` and exits 0 iff ``problems``
is empty: what the client itself saw go wrong (a wrong reply, no ERROR line, a connection
that never closed). What the server must still be afterwards (answering, no zombie, no
leaked descriptor, bounded memory) is checked from outside by the tests.

``CORPUS`` at the bottom is the table of cases: adding one is one function and one entry.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import resource
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lab.programs.wrap import MAX_LINE

# Upper bound for one blocking socket call; never a speed expectation.
IO_TIMEOUT = 20.0
# The course's dictionary words used below and what the dictionary server answers.
WORDS = {b"hello": "你好", b"world": "世界", b"love": "爱"}
# How the line a server sends before closing on an over-long request begins.
ERROR_PREFIX = f"ERROR line longer than {MAX_LINE} bytes".encode()
NL = b"\n"
LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    kind: str  # "echo" (upper-casing servers), "dict" or "udp"
    serial: bool  # serves one connection at a time (the iterative server)


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


CaseFn = Callable[[Target, Report], None]


@dataclass(frozen=True)
class Case:
    name: str
    proto: str  # "tcp" or "udp"
    run: CaseFn
    what: str
    heavy: bool = False  # long or resource-hungry: marked slow, still run in CI
    # A regex that must match a server log line written during the case (None: no demand).
    log: str | None = None


# -- helpers ---------------------------------------------------------------------------------


def reply_to(kind: str, line: bytes) -> bytes:
    """What a correct server answers to one request line (with its line ending).

    The echo servers upper-case ASCII letters and keep every other byte (C's toupper);
    the dictionary answers a known word's translation, else the line itself without its
    line ending. Inputs are chosen without blanks, which the dictionary would strip.
    """
    if kind == "echo":
        return line.upper()
    word = line.rstrip(b"\r\n")
    known = WORDS.get(word) or WORDS.get(word.lower())
    return (known.encode() if known is not None else word) + b"\n"


def replies_to(kind: str, data: bytes) -> bytes:
    """The replies to whole lines. Only "\\n" ends a line (bytes.splitlines would split at
    a lone "\\r" as well)."""
    lines = [line + b"\n" for line in data.split(b"\n")[:-1]]
    return b"".join(reply_to(kind, line) for line in lines)


def connect(t: Target, timeout: float = IO_TIMEOUT) -> socket.socket:
    return socket.create_connection((t.host, t.port), timeout=timeout)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only if the peer closed first."""
    chunks: list[bytes] = []
    while n > 0:
        data = sock.recv(min(n, 1 << 20))
        if not data:
            break
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


def recv_line(sock: socket.socket, limit: int = 4096) -> bytes:
    """One line, read a byte at a time so nothing after it is consumed."""
    line = bytearray()
    while len(line) < limit and not line.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        line += data
    return bytes(line)


def closed_by_peer(sock: socket.socket) -> str:
    """Read until the server closes: ``eof``, ``reset``, or ``open`` (nothing within the
    timeout: the connection was not closed)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "open"
    return "eof"


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """sendall, where the server closing (and resetting) part-way is expected."""
    with contextlib.suppress(OSError):
        sock.sendall(data)


@contextlib.contextmanager
def sending(sock: socket.socket, data: bytes) -> Iterator[threading.Thread]:
    """Send ``data`` from a thread while the caller reads (so neither side blocks)."""
    thread = threading.Thread(target=send_quietly, args=(sock, data), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(IO_TIMEOUT)


def exchange(t: Target, r: Report, data: bytes, label: str) -> None:
    """Send ``data`` (whole lines) on one connection; expect exactly the right replies."""
    want = replies_to(t.kind, data)
    with connect(t) as sock, sending(sock, data):
        got = recv_exactly(sock, len(want))
    r.expect(got == want, f"{label}: wrong reply ({len(got)} bytes, {got[:60]!r}...)")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


# -- TCP cases -------------------------------------------------------------------------------


def refused_line(t: Target, r: Report, data: bytes) -> None:
    """Send an over-long line; expect the ERROR line, then the server's close."""
    with connect(t) as sock, sending(sock, data):
        first = recv_line(sock)
        r.expect(first.startswith(ERROR_PREFIX), f"no ERROR line, got {first[:60]!r}")
        how = closed_by_peer(sock)
        r.facts["closed"] = how
        r.expect(how == "eof", f"after the ERROR line the server did not close ({how})")


def line_1mib(t: Target, r: Report) -> None:
    refused_line(t, r, b"a" * (1 << 20) + b"\n")


def line_over_limit(t: Target, r: Report) -> None:
    refused_line(t, r, b"b" * (MAX_LINE + 1) + b"\n")


def line_at_limit(t: Target, r: Report) -> None:
    exchange(t, r, b"c" * MAX_LINE + b"\n", "a line of exactly MAX_LINE bytes")
    exchange(t, r, b"d" * (MAX_LINE - 1) + b"\n", "a line one byte under MAX_LINE")


def no_newline_ever(t: Target, r: Report) -> None:
    """Stream bytes with no newline, up to 8 MiB, until the server refuses them."""
    stop = threading.Event()

    def stream(sock: socket.socket) -> None:
        chunk = b"x" * 65536
        with contextlib.suppress(OSError):
            for _ in range(128):
                if stop.is_set():
                    return
                sock.sendall(chunk)

    with connect(t) as sock:
        sender = threading.Thread(target=stream, args=(sock,), daemon=True)
        sender.start()
        first = recv_line(sock)
        stop.set()
        r.expect(first.startswith(ERROR_PREFIX), f"no ERROR line, got {first[:60]!r}")
        how = closed_by_peer(sock)
        r.facts["closed"] = how
        # The sender may still have had data in flight when the server stopped draining:
        # then the close is a reset. Either way the server must not keep the connection.
        r.expect(how in {"eof", "reset"}, "the server kept a newline-less stream open")
        sender.join(IO_TIMEOUT)


def nul_bytes(t: Target, r: Report) -> None:
    exchange(t, r, b"\x00\n" + b"ab\x00cd\x00\n" + b"\x00" * 1000 + b"\n", "NUL bytes")


def invalid_utf8(t: Target, r: Report) -> None:
    lines = [
        b"\xff\xfe\n",  # never valid in UTF-8
        b"hello\xc3\x28\n",  # a broken two-byte sequence after a known word
        b"\xed\xa0\x80\n",  # an encoded surrogate
        b"\xc0\xaf\n",  # an overlong encoding of '/'
        b"\xe4\xbd\n",  # a truncated three-byte sequence
    ]
    exchange(t, r, b"".join(lines), "invalid UTF-8")


def binary_garbage(t: Target, r: Report) -> None:
    """256 KiB of random bytes (lines wherever a 0x0a falls)."""
    rng = random.Random(1)
    data = rng.randbytes(256 * 1024) + b"\n"
    with connect(t) as sock, sending(sock, data):
        if t.kind == "echo":
            got = recv_exactly(sock, len(data))
            r.expect(got == data.upper(), "the echo of random bytes differs")
        else:  # the dictionary: one reply line per request line
            want = data.count(b"\n")
            got = b""
            while got.count(b"\n") < want and (chunk := sock.recv(65536)):
                got += chunk
            lines = got.count(b"\n")
            r.expect(lines == want, f"{lines} reply lines for {want}")


def telnet_iac(t: Target, r: Report) -> None:
    """What telnet's option negotiation and ^C look like to a line server."""
    exchange(t, r, b"\xff\xfb\x01\xff\xfd\x03hello\n" + b"\xff\xf4\xff\xfd\x06\n", "telnet IAC")


def crlf_lines(t: Target, r: Report) -> None:
    exchange(t, r, b"hello\r\nlove\r\n\r\n\r\r\n", "CRLF lines")


def empty_lines(t: Target, r: Report) -> None:
    exchange(t, r, b"\n" * 1000, "1000 empty lines")


def data_segments(sock: socket.socket) -> int:
    """Segments this socket has sent with data in them, retransmissions not counted
    (``tcpi_data_segs_out`` less ``tcpi_total_retrans`` from TCP_INFO, Linux >= 4.6)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    total_retrans = struct.unpack_from("I", info, 100)[0]
    data_segs_out = struct.unpack_from("I", info, 156)[0]
    return int(data_segs_out - total_retrans)


def one_byte_per_segment(t: Target, r: Report) -> None:
    """Nagle off and one send() per byte, a short pause between: one byte per segment."""
    data = b"hello\nworld\nlove\n"
    want = replies_to(t.kind, data)
    with connect(t) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in data:
            sock.send(bytes([byte]))
            time.sleep(0.002)
        got = recv_exactly(sock, len(want))
        segments = data_segments(sock)
    r.facts["data_segments"] = segments
    r.expect(segments == len(data), f"{len(data)} bytes went in {segments} segments")
    r.expect(got == want, f"one byte per segment: got {got!r}")


def split_line_with_pauses(t: Target, r: Report) -> None:
    want = reply_to(t.kind, b"hello\n")
    with connect(t) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for part in (b"h", b"el", b"lo", b"\n"):
            sock.sendall(part)
            time.sleep(0.2)
        got = recv_exactly(sock, len(want))
    r.expect(got == want, f"a line sent in pauses: got {got!r}")


def many_lines_one_segment(t: Target, r: Report) -> None:
    """250 lines in 1250 bytes: under one MSS, so one segment holds them all."""
    data = b"love\n" * 250
    want = replies_to(t.kind, data)
    with connect(t) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(data)
        got = recv_exactly(sock, len(want))
        segments = data_segments(sock)
    r.expect(segments == 1, f"250 lines went in {segments} segments, not one")
    r.expect(got == want, f"250 lines in one segment: {got.count(NL)} replies")


def pipeline_1mib(t: Target, r: Report) -> None:
    """A megabyte of short lines sent without waiting for any reply."""
    data = b"".join(b"hello%d\n" % i for i in range(100_000))
    exchange(t, r, data, "a pipelined megabyte")


def urgent_data(t: Target, r: Report) -> None:
    """A TCP urgent byte mid-line. Without SO_OOBINLINE, Linux takes it out of the stream."""
    want = reply_to(t.kind, b"abd\n")
    with connect(t) as sock:
        sock.sendall(b"ab")
        sock.send(b"c", socket.MSG_OOB)
        sock.sendall(b"d\n")
        got = recv_line(sock)
    r.expect(got == want, f"urgent data: got {got!r}, want {want!r}")


def reset_mid_line(t: Target, r: Report) -> None:
    sock = connect(t)
    sock.sendall(b"half a li")
    time.sleep(0.1)  # let the server read the partial line first
    reset(sock)


def reset_before_accept(t: Target, r: Report) -> None:
    """200 connections reset as soon as the handshake is done, before any accept."""
    for _ in range(200):
        reset(connect(t))


def half_close_then_silence(t: Target, r: Report) -> None:
    """A line, FIN, then nothing for a while; the reply and the server's FIN still come."""
    with connect(t) as sock:
        sock.sendall(b"hello\n")
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        want = reply_to(t.kind, b"hello\n")
        got = recv_exactly(sock, len(want) + 1)
    r.expect(got == want, f"after half-close: got {got!r}, want {want!r} then EOF")


def eof_at_once(t: Target, r: Report) -> None:
    """FIN straight after the handshake, no byte ever sent: the server closes too."""
    with connect(t) as sock:
        sock.shutdown(socket.SHUT_WR)
        how = closed_by_peer(sock)
    r.expect(how == "eof", f"after an immediate FIN the server's side was {how}")


def connect_and_vanish(t: Target, r: Report) -> None:
    """20 client processes connect, send half a line and are SIGKILLed."""
    pids = []
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            try:
                sock = connect(t)
                sock.sendall(b"half")
                os.kill(os.getpid(), signal.SIGKILL)
            finally:
                os._exit(1)
        pids.append(pid)
    killed = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    r.expect(killed == len(pids), f"only {killed} of {len(pids)} clients got as far as vanishing")


def never_reads(t: Target, r: Report) -> None:
    """Send lines without ever reading the echoes until both directions are full, then
    close with the echoes unread (the kernel resets the connection)."""
    with connect(t) as sock:
        sock.setblocking(False)
        chunk = b"love\n" * 13_000
        sent = 0
        idle_since = time.monotonic()
        while sent < 256 << 20 and time.monotonic() - idle_since < 1.0:
            try:
                sent += sock.send(chunk)
                idle_since = time.monotonic()
            except BlockingIOError:
                select.select([], [sock], [], 0.1)
        r.facts["sent_before_stall"] = sent
        r.expect(sent < 256 << 20, "the server kept reading 256 MiB without its echoes read")
        waiting, _, _ = select.select([sock], [], [], 0)
        r.expect(bool(waiting), "no echo ever arrived")


def close_unread_replies(t: Target, r: Report) -> None:
    """Send 100 KB of lines and close at once: the echoes meet a closed socket."""
    for _ in range(10):
        with connect(t) as sock:
            sock.sendall(b"hello\n" * 17_000)


def slowloris_1000(t: Target, r: Report) -> None:
    """1,000 connections, each holding half a request; for a concurrent server, a normal
    client is still answered meanwhile."""
    raise_fd_limit()
    socks = open_many(t, 1000)
    try:
        up = [s for s in socks if connected(s)]
        r.facts["established"] = len(up)
        for sock in up:
            with contextlib.suppress(OSError):
                sock.send(b"GET / HTTP/1.1\r\nX-a: ")
        if not t.serial:
            r.expect(len(up) == len(socks), f"only {len(up)} of 1000 connections established")
            with connect(t) as sock:
                sock.sendall(b"hello\n")
                got = recv_line(sock)
            want = reply_to(t.kind, b"hello\n")
            r.expect(got == want, f"a normal client among 1000 idle ones got {got!r}")
    finally:
        for sock in socks:
            sock.close()


def slowloris_fat(t: Target, r: Report) -> None:
    """300 connections, each holding a line just under the limit, newline never sent: as
    much as a server buffers per connection; a normal client is still answered."""
    raise_fd_limit()
    socks = open_many(t, 300)
    try:
        up = [s for s in socks if connected(s)]
        r.facts["established"] = len(up)
        for sock in up:
            sock.setblocking(True)
            sock.settimeout(IO_TIMEOUT)
            send_quietly(sock, b"y" * (MAX_LINE - 100))
        if not t.serial:
            r.expect(len(up) == len(socks), f"only {len(up)} of 300 connections established")
            with connect(t) as sock:
                sock.sendall(b"hello\n")
                got = recv_line(sock)
            want = reply_to(t.kind, b"hello\n")
            r.expect(got == want, f"a normal client among 300 fat ones got {got!r}")
    finally:
        for sock in socks:
            sock.close()


def open_many(t: Target, n: int) -> list[socket.socket]:
    """Start ``n`` non-blocking connects; wait until all are up or progress stalls (a
    serial server's full accept queue drops SYNs; the kernel retries them for minutes)."""
    socks: list[socket.socket] = []
    for _ in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex((t.host, t.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(err, os.strerror(err))
        socks.append(sock)
    pending = list(socks)
    last_progress = time.monotonic()
    stall = 3.0 if t.serial else IO_TIMEOUT
    while pending and time.monotonic() - last_progress < stall:
        _, ready, _ = select.select([], pending, [], 0.2)
        if ready:
            last_progress = time.monotonic()
            pending = [s for s in pending if s not in ready]
    return socks


def connected(sock: socket.socket) -> bool:
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
        return False
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def churn_2000(t: Target, r: Report) -> None:
    """2,000 connect/close cycles, back to back; every tenth sends a line first."""
    failed = 0
    for i in range(2000):
        try:
            with connect(t) as sock:
                if i % 10 == 0:
                    sock.sendall(b"hello\n")
        except OSError:
            failed += 1
    r.expect(failed == 0, f"{failed} of 2000 connects failed")


def syn_then_rst(t: Target, r: Report) -> None:
    """50 bare SYNs from a raw socket: the server's SYN-ACKs meet no socket here, so this
    host's kernel answers each with RST. The server must forget every one."""
    source = source_address(t)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    with raw:
        ports = random.sample(range(20000, 30000), 50)
        for port in ports:
            seq = random.getrandbits(32)
            raw.sendto(syn_segment(source, t.host, port, t.port, seq), (t.host, 0))
        answered = syn_acks(raw, t, set(ports), deadline=time.monotonic() + 5.0)
    r.facts["syn_acks"] = len(answered)
    r.expect(len(answered) == len(ports), f"SYN-ACKs for {len(answered)} of {len(ports)} SYNs")


def source_address(t: Target) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((t.host, 9))  # no packet: only picks the route and source address
        return str(probe.getsockname()[0])


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def syn_segment(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    """A 20-byte TCP header with only SYN set (the kernel adds the IP header)."""
    header = struct.pack("!HHIIHHHH", sport, dport, seq, 0, (5 << 12) | 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst)
    pseudo += struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    return header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]


def syn_acks(raw: socket.socket, t: Target, ports: set[int], deadline: float) -> set[int]:
    """The ports among ``ports`` that got a SYN-ACK from the server before ``deadline``."""
    seen: set[int] = set()
    server = socket.inet_aton(t.host)
    while seen != ports:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([raw], [], [], left)[0]:
            break
        packet = raw.recv(65535)
        ihl = (packet[0] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", packet[ihl : ihl + 4])
        flags = packet[ihl + 13]
        syn_ack = flags & 0x12 == 0x12
        if packet[12:16] == server and sport == t.port and syn_ack and dport in ports:
            seen.add(dport)
    return seen


# -- UDP cases -------------------------------------------------------------------------------


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    return sock


def udp_echo(t: Target, payload: bytes, tries: int = 3) -> bytes | None:
    """Send one datagram until its echo comes back (UDP may drop); the echo or None."""
    with udp_socket() as sock:
        for _ in range(tries):
            sock.sendto(payload, (t.host, t.port))
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                continue
            return data
    return None


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

CORPUS: tuple[Case, ...] = (
    Case("line_1mib", "tcp", line_1mib, "a 1 MiB line", log=TOO_LONG),
    Case("line_over_limit", "tcp", line_over_limit, "MAX_LINE+1 bytes", log=TOO_LONG),
    Case("line_at_limit", "tcp", line_at_limit, "MAX_LINE and MAX_LINE-1 bytes"),
    Case("no_newline_ever", "tcp", no_newline_ever, "8 MiB without a newline", log=TOO_LONG),
    Case("nul_bytes", "tcp", nul_bytes, "NUL bytes in lines"),
    Case("invalid_utf8", "tcp", invalid_utf8, "invalid UTF-8 sequences"),
    Case("binary_garbage", "tcp", binary_garbage, "256 KiB of random bytes"),
    Case("telnet_iac", "tcp", telnet_iac, "telnet IAC negotiation and interrupt"),
    Case("crlf_lines", "tcp", crlf_lines, "CRLF and lone CR line endings"),
    Case("empty_lines", "tcp", empty_lines, "1000 empty lines"),
    Case("one_byte_per_segment", "tcp", one_byte_per_segment, "TCP_NODELAY, 1-byte sends"),
    Case("split_line_with_pauses", "tcp", split_line_with_pauses, "a line in 4 pieces"),
    Case("many_lines_one_segment", "tcp", many_lines_one_segment, "250 lines in 1 segment"),
    Case("pipeline_1mib", "tcp", pipeline_1mib, "100,000 lines without waiting"),
    Case("urgent_data", "tcp", urgent_data, "an MSG_OOB byte mid-line"),
    Case("reset_mid_line", "tcp", reset_mid_line, "SO_LINGER 0 close mid-line", log=RESET),
    Case("reset_before_accept", "tcp", reset_before_accept, "200 resets right after connect"),
    Case("half_close_then_silence", "tcp", half_close_then_silence, "a line, FIN, silence"),
    Case("eof_at_once", "tcp", eof_at_once, "FIN before any data"),
    Case("connect_and_vanish", "tcp", connect_and_vanish, "20 clients SIGKILLed mid-line"),
    Case("never_reads", "tcp", never_reads, "sends until stalled, never reads", log=RESET),
    Case("close_unread_replies", "tcp", close_unread_replies, "close with echoes unsent"),
    Case("syn_then_rst", "tcp", syn_then_rst, "50 raw SYNs, the SYN-ACKs reset"),
    Case("slowloris_1000", "tcp", slowloris_1000, "1000 idle half requests", heavy=True),
    Case("slowloris_fat", "tcp", slowloris_fat, "300 lines held just under MAX_LINE", heavy=True),
    Case("churn_2000", "tcp", churn_2000, "2000 connect/close cycles", heavy=True),
    Case("udp_oversized", "udp", udp_oversized, "a 65507-byte datagram"),
    Case("udp_empty", "udp", udp_empty, "an empty datagram"),
    Case("udp_binary", "udp", udp_binary, "binary datagrams around the MTU"),
    Case("udp_vanish", "udp", udp_vanish, "200 senders gone before the echo"),
    Case("udp_burst_unread", "udp", udp_burst_unread, "2000 datagrams, echoes unread"),
    Case("udp_many_senders", "udp", udp_many_senders, "500 senders at once"),
)
CASES = {case.name: case for case in CORPUS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.hardening.hostile")
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
