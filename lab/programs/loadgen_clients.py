"""The clients of ``lab.programs.loadgen``: each sends a line and checks the reply, over and
over, counting into shared statistics; the ramp bounds how many start at once.

Standard library only: this runs on every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from lab.programs.wrap import MAX_LINE

# Pause after an error before trying again: a closed port must not become a busy loop.
ERROR_BACKOFF_SECONDS = 0.05
# Descriptors the process needs besides one per client: stdio, epoll, the loop's pipe.
_FILLER = "abcdefghijklmnopqrstuvwxyz" * (MAX_LINE // 26 + 1)


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    concurrency: int
    duration: float
    size: int
    mode: str
    ramp: int
    ramp_timeout: float
    timeout: float
    expect: str


class WrongReply(Exception):
    """The server answered, but not with the expected line."""


def message(client: int, seq: int, size: int) -> bytes:
    """``size`` bytes ending in a newline, unique to (client, seq), lower case letters."""
    return ((f"{client}.{seq} " + _FILLER)[: size - 1] + "\n").encode("ascii")


def error_kind(exc: BaseException) -> str:
    """The counter an exception goes to (see ``lab.programs.loadgen``'s docstring)."""
    if isinstance(exc, TimeoutError):  # before OSError: it is one
        return "timeout"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "short"
    if isinstance(exc, WrongReply | asyncio.LimitOverrunError):
        return "wrong"
    if isinstance(exc, OSError):
        if exc.errno:
            return errno.errorcode.get(exc.errno, f"errno {exc.errno}")
        # asyncio raises some of these without an errno ("Connection lost").
        for cls, name in (
            (ConnectionRefusedError, "ECONNREFUSED"),
            (ConnectionResetError, "ECONNRESET"),
            (BrokenPipeError, "EPIPE"),
        ):
            if isinstance(exc, cls):
                return name
    return type(exc).__name__


@dataclass
class Stats:
    """Counters shared by every client (one event loop: no locks needed)."""

    window_open: bool = False
    messages: int = 0
    connections: int = 0  # opened during the window
    connections_total: int = 0  # opened during the whole run
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    served: set[int] = field(default_factory=set)  # clients with at least one right reply

    def connected(self) -> None:
        self.connections_total += 1
        if self.window_open:
            self.connections += 1

    def replied(self, client: int, latency: float) -> None:
        self.served.add(client)
        if self.window_open:
            self.messages += 1
            self.latencies.append(latency)


class Ramp:
    """Admits at most ``width`` first exchanges at once; ``done`` is set once every one of
    ``clients`` first exchanges has ended (well or not)."""

    def __init__(self, width: int, clients: int) -> None:
        self._slots = asyncio.Semaphore(width)
        self._left = clients
        self.started = 0
        self.done = asyncio.Event()
        self.go = asyncio.Event()  # set when the window opens
        if clients == 0:
            self.done.set()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            self.started += 1
            try:
                yield
            finally:
                self._left -= 1
                if self._left == 0:
                    self.done.set()


class Client:
    def __init__(self, index: int, cfg: Config, stats: Stats) -> None:
        self.index = index
        self.cfg = cfg
        self.stats = stats
        self.seq = 0
        self.in_flight = False
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def run(self, ramp: Ramp) -> None:
        try:
            async with ramp.slot():
                await self.step()
            # Wait for the others: the ramp measures connecting, not serving as well.
            await ramp.go.wait()
            while True:
                await self.step()
        finally:
            self.close()

    async def step(self) -> None:
        """One request; an error is counted, the connection dropped, and a pause taken."""
        self.in_flight = True
        start = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = await self._connect()
            if self.cfg.mode == "persistent":
                start = time.perf_counter()  # the round trip only, not a reconnect
            await self._exchange(*self._conn)
            self.stats.replied(self.index, time.perf_counter() - start)
            if self.cfg.mode == "per-request":
                self.close()
        except Exception as exc:  # every failure of a request is a counted error
            self.stats.errors[error_kind(exc)] += 1
            self.close()
            self.in_flight = False  # pausing is not waiting for the server
            await asyncio.sleep(ERROR_BACKOFF_SECONDS)
        finally:
            self.in_flight = False

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(self.cfg.timeout):
            # The limit lets a too-long reply show as wrong instead of being buffered.
            conn = await asyncio.open_connection(
                self.cfg.host, self.cfg.port, limit=self.cfg.size + 1
            )
        self.stats.connected()
        return conn

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = message(self.index, self.seq, self.cfg.size)
        self.seq += 1
        expected = data.upper() if self.cfg.expect == "upper" else data
        async with asyncio.timeout(self.cfg.timeout):
            writer.write(data)
            await writer.drain()
            reply = await reader.readuntil(b"\n")
        if reply != expected:
            raise WrongReply(f"expected {expected[:40]!r}, got {reply[:40]!r}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None
