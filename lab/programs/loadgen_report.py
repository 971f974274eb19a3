"""What ``lab.programs.loadgen`` reports: the JSON summary of a run and its text form.

Standard library only: this runs on every node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lab.programs.loadgen_clients import Config, Stats


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
