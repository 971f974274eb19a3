"""Link impairments: the values of a ``netem:`` mapping, read with their units, and the
argument list of the kernel's netem qdisc they become.

Every value is kept in one base unit (microseconds, percent, bits per second, packets) so
that two spellings of one impairment compare equal, and written back for ``tc`` in that
unit, never as the user typed it. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

from lab.errors import UsageError

Direction = Literal["ingress", "egress"]
DIRECTIONS: tuple[Direction, ...] = ("ingress", "egress")

MAX_DELAY_US = 10_000_000  # 10 s: more is a stalled link, not a slow one
MIN_RATE, MAX_RATE = 8_000, 100_000_000_000  # 8 kbit/s to 100 Gbit/s
LIMIT_RANGE = (1, 1_000_000)  # packets the qdisc holds
# What a backend says when tc does not know the qdisc (a kernel built without it).
NO_NETEM_KERNEL = "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)"
NO_NETEM = (
    "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off, or the sch_netem module "
    "cannot be loaded: try `modprobe sch_netem`); run the topology without `netem`"
)

_TIME_UNITS = {"us": 1, "ms": 1000, "s": 1_000_000}
_RATE_UNITS = {
    "bit": 1, "kbit": 1000, "mbit": 1_000_000, "gbit": 1_000_000_000,
    "bps": 8, "kbps": 8000, "mbps": 8_000_000, "gbps": 8_000_000_000,
}  # fmt: skip
_NUMBER_UNIT_RE = re.compile(r"(?P<num>-?[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z%]*)")


@dataclass(frozen=True)
class Netem:
    """One netem qdisc's settings; zero (or None) means "not set"."""

    delay_us: int = 0
    jitter_us: int = 0
    loss: float = 0.0  # percent
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    rate_bit: int = 0  # bits per second
    limit: int | None = None  # packets

    def tc_args(self) -> list[str]:
        """The qdisc's part of ``tc qdisc replace dev IFACE root ...``: ``netem`` and
        its parameters, each a separate argument."""
        args = ["netem"]
        if self.limit is not None:
            args += ["limit", str(self.limit)]
        if self.delay_us or self.jitter_us:
            args += ["delay", f"{self.delay_us}us"]
            if self.jitter_us:
                args.append(f"{self.jitter_us}us")
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if value:
                args += [name, f"{value:g}%"]
        if self.rate_bit:
            args += ["rate", f"{self.rate_bit}bit"]
        return args

    def netem_only(self) -> list[str]:
        """The keys set here that only the netem qdisc can make: without it, a kernel can
        still drop packets at random (netfilter) and limit the rate (tbf), nothing else."""
        keys = [("delay", self.delay_us), ("jitter", self.jitter_us)]
        keys += [(k, getattr(self, k)) for k in ("duplicate", "reorder", "corrupt")]
        return [name for name, value in keys if value]

    def describe(self) -> str:
        """Short and readable, for reports and messages: ``delay 50ms loss 5%``."""
        parts = []
        if self.delay_us:
            jitter = f" ±{_time_text(self.jitter_us)}" if self.jitter_us else ""
            parts.append(f"delay {_time_text(self.delay_us)}{jitter}")
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name} {value:g}%")
        if self.rate_bit:
            parts.append(f"rate {_rate_text(self.rate_bit)}")
        if self.limit is not None:
            parts.append(f"limit {self.limit}")
        return " ".join(parts) or "none"


NETEM_FIELDS = tuple(f.name for f in fields(Netem))


def _time_text(us: int) -> str:
    if us % 1000:
        return f"{us}us"
    return f"{us // 1000}ms" if us % 1_000_000 else f"{us // 1_000_000}s"


def _rate_text(bit: int) -> str:
    for unit, size in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bit % size == 0:
            return f"{bit // size}{unit}"
    return f"{bit}bit"


def parse_time(text: str) -> tuple[int | None, str]:
    """Microseconds from ``50ms``, ``1.5s``, ``200us``; or None and why not."""
    m = _NUMBER_UNIT_RE.fullmatch(text.strip())
    if m is None:
        return None, f"{text!r} is not a duration: a number and a unit (us, ms, s), e.g. 50ms"
    unit = m["unit"]
    if unit not in _TIME_UNITS:
        why = "needs a unit" if not unit else f"unknown unit {unit!r}"
        return None, f"{text!r} {why}: one of us, ms, s (e.g. 50ms)"
    value = float(m["num"]) * _TIME_UNITS[unit]
    if value < 0:
        return None, f"{text!r} is negative; a duration is 0 or more"
    if value > MAX_DELAY_US:
        return None, f"{text!r} is more than {MAX_DELAY_US // 1_000_000}s"
    if value and value < 1:
        return None, f"{text!r} is less than 1us"
    return round(value), ""


def parse_percent(text: str) -> tuple[float | None, str]:
    """A percentage from ``5%`` or ``0.1%``; or None and why not."""
    m = _NUMBER_UNIT_RE.fullmatch(text.strip())
    if m is None or m["unit"] != "%":
        return None, f"{text!r} is not a percentage: a number and '%', e.g. 5%"
    value = float(m["num"])
    if not 0 <= value <= 100:
        return None, f"{text!r} is outside 0% to 100%"
    return value, ""


def parse_rate(text: str) -> tuple[int | None, str]:
    """Bits per second from ``1mbit``, ``100kbit``, ``10mbps`` (bytes); or None and why."""
    m = _NUMBER_UNIT_RE.fullmatch(text.strip())
    units = ", ".join(_RATE_UNITS)
    if m is None:
        return None, f"{text!r} is not a rate: a number and a unit ({units}), e.g. 1mbit"
    unit = m["unit"].lower()
    if unit not in _RATE_UNITS:
        why = "needs a unit" if not m["unit"] else f"unknown unit {m['unit']!r}"
        return None, f"{text!r} {why}: one of {units} (e.g. 1mbit)"
    value = round(float(m["num"]) * _RATE_UNITS[unit])
    if not MIN_RATE <= value <= MAX_RATE:
        return None, f"{text!r} is outside 8kbit to 100gbit"
    return value, ""


@dataclass(frozen=True)
class ImpairStep:
    """A scenario's run-time change: ``netem`` on one interface and direction from
    ``start`` seconds after the scenarios start, for ``duration`` seconds."""

    node: str
    network: str
    direction: Direction
    start: float
    duration: float
    netem: Netem


@dataclass(frozen=True)
class Impairment:
    """The netem of one node interface in one direction. ``ingress`` is what the node
    receives from the network (applied on the network's side of the link, so the sender's
    capture still shows what was lost), ``egress`` what it sends."""

    node: str
    network: str
    direction: Direction
    netem: Netem


def netem_from_options(values: dict[str, str | None], limit: int | None = None) -> Netem:
    """A ``Netem`` from command-line values (``{"delay": "100ms", "loss": None, ...}``, each
    key a ``netem`` key), read exactly as the topology's keys are; every problem is named
    by its option (``--loss '120%' is outside 0% to 100%``) in one ``UsageError``."""
    parsers = {"delay": parse_time, "jitter": parse_time, "rate": parse_rate}
    got: dict[str, float] = {}
    problems = []
    for key, text in values.items():
        if text is None:
            continue
        value, why = parsers.get(key, parse_percent)(text)
        if value is None:
            problems.append(f"--{key}: {why}")
        else:
            got[key] = value
    for needs in ("jitter", "reorder"):
        if values.get(needs) is not None and values.get("delay") is None:
            problems.append(f"--{needs} needs --delay (netem {needs}s delayed packets)")
    if limit is not None and not LIMIT_RANGE[0] <= limit <= LIMIT_RANGE[1]:
        problems.append(f"--limit: {limit} is outside {LIMIT_RANGE[0]} to {LIMIT_RANGE[1]}")
    if problems:
        raise UsageError("; ".join(problems))
    return netem_of(got, limit)


def netem_of(values: Mapping[str, float], limit: int | None) -> Netem:
    """A Netem from parsed values by key name (``delay`` and ``jitter`` in µs, ``rate`` in
    bit/s, the rest in percent); a key not there is not set."""
    return Netem(
        delay_us=int(values.get("delay", 0)),
        jitter_us=int(values.get("jitter", 0)),
        loss=values.get("loss", 0.0),
        duplicate=values.get("duplicate", 0.0),
        reorder=values.get("reorder", 0.0),
        corrupt=values.get("corrupt", 0.0),
        rate_bit=int(values.get("rate", 0)),
        limit=limit,
    )
