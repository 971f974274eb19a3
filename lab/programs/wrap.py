"""Error-wrapped socket calls and the course's read/write helpers.

Two families of socket calls, as in the course's ``wrap.c``:

- lowercase ``socket_tcp``/``bind``/``listen``/``accept``/``connect`` raise ``CallError``,
  whose ``line`` names the call, the address and the errno in one line, e.g.
  ``bind 0.0.0.0:9999: EADDRINUSE (Address already in use)``;
- Capitalised ``Socket``/``Bind``/``Listen``/``Accept``/``Connect`` print that line on
  stderr and exit with status 1 (the capital letter marks "errors handled here").

``readn``, ``writen`` and ``LineReader`` keep read()'s meanings: a recv of 0 bytes means the
peer closed its side; errors (ECONNRESET, EPIPE, ...) propagate as ``OSError``.
"""

from __future__ import annotations

import errno
import os
import socket
import sys

TYPE_CHECKING = False  # typing is for the checker: not imported by every server and client
if TYPE_CHECKING:
    from typing import NoReturn

# Longest request line a server accepts, in bytes, not counting the terminating "\n".
MAX_LINE = 65536
# Bytes asked of each recv() when reading requests.
RECV_CHUNK = 65536

# accept() errors that concern one half-open connection, not the listening socket:
# the next accept() may well succeed, so they are retried at once (as UNP's Accept does).
_ACCEPT_RETRY = frozenset({errno.ECONNABORTED, errno.EPROTO})


def log(message: str) -> None:
    """Write one line to stderr with a single unbuffered write.

    os.write is used rather than print so that lines from forked children, threads and
    signal handlers never interleave or hit a re-entrant buffered writer.
    """
    data = (message + "\n").encode("utf-8", "replace")
    try:
        while data:
            data = data[os.write(2, data) :]
    except OSError:
        pass  # stderr gone (closed pipe): the server keeps serving regardless


def errno_text(exc: OSError) -> str:
    """``EADDRINUSE (Address already in use)`` for an OSError; timeouts without an errno
    (socket timeouts) read as ETIMEDOUT."""
    code = exc.errno
    if code is None and isinstance(exc, TimeoutError):
        code = errno.ETIMEDOUT
    if code is None:
        return str(exc) or type(exc).__name__
    name = errno.errorcode.get(code, f"errno {code}")
    return f"{name} ({os.strerror(code)})"


def address_text(host: str, port: int) -> str:
    return f"{host}:{port}"


class CallError(Exception):
    """A failed socket call: which call, on which address, and why (errno name + text)."""

    def __init__(self, call: str, address: str | None, cause: OSError) -> None:
        self.call = call
        self.address = address
        self.cause = cause
        self.reason = errno_text(cause)
        where = f"{call} {address}" if address else call
        self.line = f"{where}: {self.reason}"
        super().__init__(self.line)


def die(err: CallError) -> NoReturn:
    """Report a failed call in one line on stderr and exit 1."""
    log(err.line)
    sys.exit(1)


# -- calls that raise CallError -------------------------------------------------------------


def socket_tcp() -> socket.socket:
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        raise CallError("socket", None, exc) from exc


def socket_udp() -> socket.socket:
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:
        raise CallError("socket", None, exc) from exc


def bind(sock: socket.socket, host: str, port: int) -> None:
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise CallError("bind", address_text(host, port), exc) from exc


def listen(sock: socket.socket, backlog: int) -> None:
    try:
        sock.listen(backlog)
    except OSError as exc:
        raise CallError("listen", local_text(sock), exc) from exc


def accept(sock: socket.socket) -> tuple[socket.socket, tuple[str, int]]:
    """accept(), retrying the per-connection errors; the connected socket is blocking."""
    while True:
        try:
            conn, peer = sock.accept()
        except OSError as exc:
            if exc.errno in _ACCEPT_RETRY:
                continue
            raise CallError("accept", local_text(sock), exc) from exc
        if conn.gettimeout() is not None:  # a timeout on the listener or a default one
            conn.setblocking(True)
        return conn, (str(peer[0]), int(peer[1]))


def connect(sock: socket.socket, host: str, port: int) -> None:
    try:
        sock.connect((host, port))
    except OSError as exc:
        raise CallError("connect", address_text(host, port), exc) from exc


def set_reuseaddr(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def local_text(sock: socket.socket) -> str:
    """The socket's local ``ip:port``, or ``?`` when it has none (closed, unbound)."""
    try:
        host, port = sock.getsockname()[:2]
    except OSError:
        return "?"
    return address_text(str(host), int(port))


# -- the same calls, exiting on failure ------------------------------------------------------


def Socket() -> socket.socket:  # the course's wrap.c naming
    try:
        return socket_tcp()
    except CallError as err:
        die(err)


def Bind(sock: socket.socket, host: str, port: int) -> None:
    try:
        bind(sock, host, port)
    except CallError as err:
        die(err)


def Listen(sock: socket.socket, backlog: int) -> None:
    try:
        listen(sock, backlog)
    except CallError as err:
        die(err)


def Accept(sock: socket.socket) -> tuple[socket.socket, tuple[str, int]]:
    try:
        return accept(sock)
    except CallError as err:
        die(err)


def Connect(sock: socket.socket, host: str, port: int) -> None:
    try:
        connect(sock, host, port)
    except CallError as err:
        die(err)


def tcp_listener(host: str, port: int, backlog: int, reuseaddr: bool) -> socket.socket:
    """socket + (SO_REUSEADDR only if asked) + bind + listen; exits 1 on failure."""
    sock = Socket()
    if reuseaddr:
        set_reuseaddr(sock)
    Bind(sock, host, port)
    Listen(sock, backlog)
    return sock


# -- reading and writing -----------------------------------------------------------------------


def readn(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes; fewer only if the peer closed first (b"" = closed at once).

    recv may return any amount up to what was asked, so one call is never enough.
    """
    chunks: list[bytes] = []
    left = n
    while left > 0:
        data = sock.recv(left)
        if not data:  # 0 bytes: the peer has closed its side
            break
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def writen(sock: socket.socket, data: bytes) -> int:
    """Write all of ``data`` (send may take only part of it); returns len(data)."""
    sent = sock.send(data)
    if sent == len(data):  # the usual case, without the slicing below
        return sent
    view = memoryview(data)[sent:]
    while view:
        sent = sock.send(view)
        view = view[sent:]
    return len(data)


class LineTooLong(Exception):
    """A line exceeded the reader's limit before its newline arrived."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"line longer than {limit} bytes")


class LineReader:
    """Buffered ``readline`` for one connection.

    The buffer belongs to this object, one per connection, so threads never share it
    (the course's readline kept it in static variables). ``readline`` returns a line with
    its ``\\n``; at EOF it returns the unterminated rest once, then b"" for ever.
    """

    def __init__(
        self,
        sock: socket.socket,
        max_line: int = MAX_LINE,
        chunk: int = RECV_CHUNK,
        pending: bytes = b"",
    ) -> None:
        """``pending``: bytes the caller has already taken from ``sock``, to be read first
        (not counted in ``received``)."""
        self._sock = sock
        self._buf = bytearray(pending)
        self._eof = False
        self.max_line = max_line
        self.chunk = chunk
        self.received = 0  # bytes taken from the socket so far

    @property
    def buffered(self) -> int:
        """Bytes read from the socket but not yet returned."""
        return len(self._buf)

    def readline(self) -> bytes:
        if not self._buf and not self._eof:
            # The usual case, one whole line per recv: returned as it came, without
            # going through the buffer.
            data = self._sock.recv(self.chunk)
            if not data:
                self._eof = True
                return b""
            self.received += len(data)
            if data.find(b"\n") == len(data) - 1 and len(data) <= self.max_line:
                return data
            self._buf += data
        scanned = 0
        while True:
            end = self._buf.find(b"\n", scanned)
            if end >= 0:
                if end > self.max_line:
                    raise LineTooLong(self.max_line)
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                return line
            if len(self._buf) > self.max_line:
                raise LineTooLong(self.max_line)
            if self._eof:
                rest = bytes(self._buf)
                self._buf.clear()
                return rest
            scanned = len(self._buf)
            data = self._sock.recv(self.chunk)
            if not data:
                self._eof = True
                continue
            self._buf += data
            self.received += len(data)
