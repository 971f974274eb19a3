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
import json
import math
import signal
import sys
import time
from typing import Any

from lab.programs.common import port_number, positive_int
from lab.programs.loadgen_clients import Client, Config, Ramp, Stats
from lab.programs.loadgen_report import Outcome, human, summary
from lab.programs.wrap import MAX_LINE, log

MODES = ("persistent", "per-request")
EXPECT = ("upper", "echo")
# Descriptors the process needs besides one per client: stdio, epoll, the loop's pipe.
SPARE_FDS = 16


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
