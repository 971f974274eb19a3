"""The hostile corpus's TCP cases: one small function per way a client can misbehave, each
judging what the lab's own servers promise (an ERROR line for an over-long line, one reply
per line whatever the segments, ...). ``hostile_corpus`` lists them."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import select
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable

from lab.programs.hostile_io import (
    ERROR_PREFIX,
    IO_TIMEOUT,
    NL,
    Report,
    Target,
    closed_by_peer,
    connect,
    exchange,
    raise_fd_limit,
    recv_exactly,
    recv_line,
    replies_to,
    reply_to,
    reset,
    send_quietly,
    sending,
    source_address,
    syn_acks,
    syn_segment,
)  # fmt: skip
from lab.programs.wrap import MAX_LINE


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

    def half_request(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.send(b"GET / HTTP/1.1\r\nX-a: ")

    held_while_served(t, r, 1000, half_request, "idle")


def slowloris_fat(t: Target, r: Report) -> None:
    """300 connections, each holding a line just under the limit, newline never sent: as
    much as a server buffers per connection; a normal client is still answered."""

    def line_under_limit(sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(IO_TIMEOUT)
        send_quietly(sock, b"y" * (MAX_LINE - 100))

    held_while_served(t, r, 300, line_under_limit, "fat")


def held_while_served(
    t: Target, r: Report, count: int, hold: Callable[[socket.socket], None], held: str
) -> None:
    """Open ``count`` connections and ``hold`` each (a request never finished); a
    concurrent server must have accepted them all and still answer a normal client."""
    raise_fd_limit()
    socks = open_many(t, count)
    try:
        up = [s for s in socks if connected(s)]
        r.facts["established"] = len(up)
        for sock in up:
            hold(sock)
        if not t.serial:
            r.expect(len(up) == len(socks), f"only {len(up)} of {count} connections established")
            with connect(t) as sock:
                sock.sendall(b"hello\n")
                got = recv_line(sock)
            want = reply_to(t.kind, b"hello\n")
            r.expect(got == want, f"a normal client among {count} {held} ones got {got!r}")
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
