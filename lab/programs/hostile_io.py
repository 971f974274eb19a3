"""The hostile-client corpus's parts: the target, the report, the socket helpers and the
raw-SYN builder that the cases of ``hostile_tcp`` and ``hostile_corpus`` share (standard
library and ``lab.programs`` only: they run on the lab's client nodes)."""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import struct
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
    serial: bool = False  # serves one connection at a time (the iterative server)


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
    """Close with RST (SO_LINGER 0); a socket whose connect failed is just closed."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


# -- raw SYNs and datagrams --------------------------------------------------------------


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
