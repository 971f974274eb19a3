"""The ``read-returns`` probe: each outcome of read(2) on one real TCP connection to a line
server, in order.

1. bytes: send a line, block in read(): it returns the reply's byte count.
2. EAGAIN: the socket made non-blocking, nothing sent: read() returns -1, errno EAGAIN.
3. EINTR: blocking again, a SIGUSR1 handler installed without SA_RESTART; another thread
   sends the signal to the reading thread while read() waits: read() returns -1, EINTR.
4. restart: the same with SA_RESTART; after the signal the other thread sends a line, and
   the one read() (restarted by the kernel) returns the reply's bytes.
5. 0: shutdown(SHUT_WR); the server reads EOF and closes (its FIN): read() returns 0.

read() is libc's own, called through ctypes: Python's ``socket.recv`` retries a call a
signal interrupted (PEP 475), which would hide EINTR. Each read is one event, ``call``
"read", with ``bytes`` its return value (-1 on failure), ``error`` its errno name or None,
``eof`` for 0; a "reading" event marks when each signalled read() began, a "signal"
event when the signal was sent.
Only the standard library: it runs on the lab's nodes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from lab.programs.wrap import writen

FIRST = b"bytes first\n"
AFTER_SIGNAL = b"after the signal\n"
# How long the other thread waits before signalling, then before sending (restart).
SIGNAL_AFTER = 0.3
SEND_AFTER = 0.3

_libc = ctypes.CDLL(None, use_errno=True)
_libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
_libc.read.restype = ctypes.c_ssize_t


class Recorder(Protocol):
    def event(self, call: str, **facts: Any) -> None: ...


def raw_read(fd: int, size: int = 4096) -> tuple[int, bytes, str | None]:
    """libc read(): (return value, the bytes read, errno name or None)."""
    buf = ctypes.create_string_buffer(size)
    n = _libc.read(fd, buf, size)
    if n < 0:
        code = ctypes.get_errno()
        return n, b"", errno.errorcode.get(code, str(code))
    return n, buf.raw[:n], None


def _read(sock: socket.socket, report: Recorder, step: str) -> tuple[int, str | None]:
    n, data, err = raw_read(sock.fileno())
    facts: dict[str, Any] = {"bytes": n, "error": err, "detail": step}
    if n > 0:
        facts["line"] = data.decode("utf-8", "replace").rstrip("\n")
    if n == 0:
        facts["eof"] = True
    report.event("read", **facts)
    return n, err


def _later(
    start: threading.Event, actions: list[tuple[float, Callable[[], None]]]
) -> threading.Thread:
    """Once ``start`` is set, run each action after its delay (from the previous one), on
    another thread."""

    def run() -> None:
        start.wait()
        for delay, action in actions:
            time.sleep(delay)
            action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _signal_read(sock: socket.socket, report: Recorder, restart: bool) -> tuple[int, str | None]:
    """A blocking read() that SIGUSR1 interrupts: with SA_RESTART (``restart``) the kernel
    restarts it and a line sent after the signal ends it; without, it fails with EINTR."""
    main = threading.get_ident()
    signal.signal(signal.SIGUSR1, lambda *_: None)
    signal.siginterrupt(signal.SIGUSR1, not restart)  # False sets SA_RESTART
    report.event("sigaction", detail=f"SIGUSR1 handler, SA_RESTART {'on' if restart else 'off'}")

    def send_signal() -> None:
        report.event("signal", detail="SIGUSR1 to the reading thread")
        signal.pthread_kill(main, signal.SIGUSR1)

    actions = [(SIGNAL_AFTER, send_signal)]
    if restart:
        actions.append((SEND_AFTER, lambda: report.event("send", bytes=writen(sock, AFTER_SIGNAL))))
    # The delays count from just before read(), so the signal lands while it blocks even
    # on a loaded machine; "reading" records that moment for the claims.
    entering = threading.Event()
    helper = _later(entering, actions)
    step = "restart" if restart else "eintr"
    report.event("reading", detail=step)
    entering.set()
    got = _read(sock, report, step)
    helper.join()
    return got


def run(sock: socket.socket, report: Recorder, timeout: float) -> bool:
    """The five steps; True when each read returned what its step shows. The socket has
    no SO_RCVTIMEO: a socket read with a timeout is never restarted, SA_RESTART or not
    (signal(7)), so the restart step would fail with EINTR. A watchdog ends the process
    instead (exit 1, no report) if the whole sequence outlasts ``timeout``."""
    watchdog = threading.Timer(timeout, os._exit, args=(1,))
    watchdog.daemon = True
    watchdog.start()
    sock.setblocking(True)  # a Python timeout would leave the descriptor non-blocking
    report.event("send", bytes=writen(sock, FIRST), error=None)
    results = [_read(sock, report, "bytes")[0] == len(FIRST)]
    os.set_blocking(sock.fileno(), False)
    results.append(_read(sock, report, "eagain") == (-1, "EAGAIN"))
    os.set_blocking(sock.fileno(), True)
    results.append(_signal_read(sock, report, restart=False) == (-1, "EINTR"))
    results.append(_signal_read(sock, report, restart=True)[0] == len(AFTER_SIGNAL))
    sock.shutdown(socket.SHUT_WR)
    report.event("shutdown", detail="SHUT_WR")
    results.append(_read(sock, report, "eof") == (0, None))
    watchdog.cancel()
    return all(results)
