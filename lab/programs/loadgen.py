"""Load generator for the line echo servers: many clients at once, one event loop.

Each of ``--concurrency`` clients sends a line of ``--size`` bytes (the newline included)
and waits for the reply, over and over: on one connection for the whole run
(``--mode persistent``) or on a new connection per request (``--mode per-request``).
A reply counts only if it is exactly what the server should send (``--expect upper``: the
course's upper-casing echo; ``echo``: the line unchanged); every line is different
(client and sequence number in front), so a reply to another request is wrong too.

The run has two phases:

- the *ramp*: each client's first exchange (connect, send, correct reply) happens with at
  most ``--ramp`` clients in it at once. A handshake completes as soon as the kernel has
  queued the connection, before the server accept()s it, so bounding connects alone would
  not bound the accept queue; a reply proves the connection was accepted. So 1,000
  clients never stand in a listen backlog of 128 at once. The ramp ends when every client
  has made its first attempt, or after ``--ramp-timeout`` seconds (the clients not started
  by the end of the run are reported as ``not_started``). A client that is through its
  first exchange keeps its connection and waits for the window;
- the *window*: ``--duration`` seconds in which completed requests, their latency and
  new connections are counted. Requests still waiting when it closes are reported as
  ``in_flight_at_end``, neither messages nor errors (a persistent client always has one).

Errors are counted in both phases, by kind: ``ECONNREFUSED``, ``ECONNRESET``, ``timeout``
(no connection or no full reply within ``--timeout``), ``short`` (the server closed before
a full reply), ``wrong`` (a reply other than the expected one), or another errno name
(``EMFILE``, ``EADDRNOTAVAIL``, ...). After an error a client closes its connection, waits
a moment and starts again. Latency is send-to-reply for persistent clients and
connect-to-reply for per-request ones (what their user waits for).

The soft RLIMIT_NOFILE is raised to the hard limit first (each client holds a socket); a
warning says when even the hard limit is below what ``--concurrency`` needs.

Exit status: 0 when the window saw messages and there was no error and every client
started; 1 otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from lab.programs.common import port_number, positive_int
from lab.programs.wrap import MAX_LINE, log

MODES = ("persistent", "per-request")
EXPECT = ("upper", "echo")
# Pause after an error before trying again: a closed port must not become a busy loop.
ERROR_BACKOFF_SECONDS = 0.05
# Descriptors the process needs besides one per client: stdio, epoll, the loop's pipe.
SPARE_FDS = 16
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
    """The counter an exception goes to (see the module docstring)."""
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


# -- limits -------------------------------------------------------------------------------


def raise_nofile(needed: int) -> dict[str, Any]:
    """Lift the soft RLIMIT_NOFILE to the hard limit; warn when that is still too low."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log(f"loadgen: cannot raise RLIMIT_NOFILE to {target}: {exc}")
    if soft < needed:
        log(
            f"loadgen: RLIMIT_NOFILE is {soft} (hard {hard}), below the {needed} descriptors "
            f"{needed - SPARE_FDS} clients need: connections beyond it fail with EMFILE"
        )
    return {"soft": soft, "hard": hard, "needed": needed}


# -- the run ------------------------------------------------------------------------------


async def _wait_any(timeout: float, *events: asyncio.Event) -> None:
    """Until one of the events is set or ``timeout`` seconds have passed."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Outcome:
    stats: Stats
    window: float
    ramp_seconds: float
    ramp_complete: bool
    not_started: int
    unfinished: int
    interrupted: str | None


async def run_load(cfg: Config) -> Outcome:
    """Ramp the clients up, count for ``cfg.duration`` seconds, then stop every client.
    SIGTERM/SIGINT end the run early; what was counted so far is reported."""
    stop = asyncio.Event()
    caught: list[str] = []

    def on_signal(signum: signal.Signals) -> None:
        caught.append(signum.name)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    stats = Stats()
    ramp = Ramp(cfg.ramp, cfg.concurrency)
    clients = [Client(i, cfg, stats) for i in range(cfg.concurrency)]
    tasks = [asyncio.create_task(c.run(ramp)) for c in clients]
    try:
        began = time.monotonic()
        await _wait_any(cfg.ramp_timeout, ramp.done, stop)
        ramp_seconds = time.monotonic() - began
        stats.window_open = True
        ramp.go.set()
        opened = time.monotonic()
        if not stop.is_set():
            await _wait_any(cfg.duration, stop)
        stats.window_open = False
        window = time.monotonic() - opened
        unfinished = sum(1 for c in clients if c.in_flight)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return Outcome(
        stats,
        window,
        ramp_seconds,
        ramp.done.is_set(),
        cfg.concurrency - ramp.started,
        unfinished,
        caught[0] if caught else None,
    )


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def summary(cfg: Config, out: Outcome, nofile: dict[str, Any]) -> dict[str, Any]:
    s = out.stats
    ordered = sorted(s.latencies)
    errors = sum(s.errors.values())
    ok = errors == 0 and out.not_started == 0 and s.messages > 0 and out.interrupted is None
    return {
        "program": "loadgen",
        "server": f"{cfg.host}:{cfg.port}",
        "mode": cfg.mode,
        "concurrency": cfg.concurrency,
        "size": cfg.size,
        "window_seconds": round(out.window, 3),
        "ramp": {
            "width": cfg.ramp,
            "seconds": round(out.ramp_seconds, 3),
            "complete": out.ramp_complete,
        },
        "messages": s.messages,
        "messages_per_s": _rate(s.messages, out.window),
        "connections": s.connections,
        "connections_per_s": _rate(s.connections, out.window),
        "connections_total": s.connections_total,
        "latency_ms": {
            "p50": _ms(percentile(ordered, 0.50)),
            "p99": _ms(percentile(ordered, 0.99)),
            "max": _ms(ordered[-1] if ordered else None),
        },
        "errors": errors,
        "errors_by_kind": dict(sorted(s.errors.items())),
        "clients_served": len(s.served),
        "not_started": out.not_started,
        "in_flight_at_end": out.unfinished,
        "nofile": nofile,
        "interrupted": out.interrupted,
        "ok": ok,
    }


def human(doc: dict[str, Any]) -> str:
    lat = doc["latency_ms"]
    ramp = doc["ramp"]
    kinds = ", ".join(f"{k} {n}" for k, n in doc["errors_by_kind"].items())
    ramp_text = f"{ramp['seconds']:.2f} s" + ("" if ramp["complete"] else " (incomplete)")

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f} ms"

    lines = [
        f"loadgen -> {doc['server']}  {doc['mode']}  {doc['concurrency']} clients  "
        f"{doc['size']} B/message",
        f"  ramp         {ramp_text}, at most {ramp['width']} clients at once",
        f"  window       {doc['window_seconds']:.2f} s",
        f"  messages     {doc['messages']:>9}  {doc['messages_per_s']:>10.1f}/s",
        f"  connections  {doc['connections']:>9}  {doc['connections_per_s']:>10.1f}/s"
        f"  ({doc['connections_total']} in all)",
        f"  latency      p50 {ms(lat['p50'])}  p99 {ms(lat['p99'])}  max {ms(lat['max'])}",
        f"  clients      {doc['clients_served']} served, {doc['not_started']} not started, "
        f"{doc['in_flight_at_end']} in flight at the end",
        f"  errors       {doc['errors']}" + (f"  ({kinds})" if kinds else ""),
    ]
    if doc["interrupted"]:
        lines.append(f"  interrupted by {doc['interrupted']}")
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def message_size(text: str) -> int:
    value = int(text)
    if not 2 <= value <= MAX_LINE + 1:
        raise argparse.ArgumentTypeError(
            f"must be 2..{MAX_LINE + 1} bytes (the newline included), got {value}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m lab.programs.loadgen",
        description="Load generator for the line echo servers (see the module docstring).",
    )
    add = parser.add_argument
    add("--host", required=True, help="server address")
    add("--port", type=port_number, default=9999, help="server port (9999)")
    add("-c", "--concurrency", type=positive_int, default=10, help="clients at once (10)")
    add("-d", "--duration", type=positive_float, default=5.0, help="counted seconds (5)")
    add("-s", "--size", type=message_size, default=32, help="bytes per message, \\n included")
    add("--mode", choices=MODES, default="persistent", help="one connection per client (default)")
    add("--ramp", type=positive_int, default=64, help="first exchanges at once (64)")
    add("--ramp-timeout", type=positive_float, default=30.0, help="longest ramp, seconds (30)")
    add("--timeout", type=positive_float, default=5.0, help="per connect and per reply (5 s)")
    add("--expect", choices=EXPECT, default="upper", help="the reply: upper-cased (default)")
    add("--json", action="store_true", help="print one JSON object instead of the table")
    return parser


def parse(argv: list[str] | None) -> tuple[Config, bool]:
    a = build_parser().parse_args(argv)
    cfg = Config(
        a.host,
        a.port,
        a.concurrency,
        a.duration,
        a.size,
        a.mode,
        a.ramp,
        a.ramp_timeout,
        a.timeout,
        a.expect,
    )
    return cfg, a.json


def main(argv: list[str] | None = None) -> int:
    cfg, as_json = parse(argv)
    nofile = raise_nofile(cfg.concurrency + SPARE_FDS)
    out = asyncio.run(run_load(cfg))
    doc = summary(cfg, out, nofile)
    print(json.dumps(doc) if as_json else human(doc), flush=True)
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
