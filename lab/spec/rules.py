"""Pure checks of single values: names, subnets, capture filters. Exported for tests and
for other tools; nothing here knows about files or lines."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network

from lab.spec.keys import MAX_PREFIX, MIN_PREFIX, NAME_RE

# Lab networks stay inside the private ranges so that no lab route can shadow a real one.
PRIVATE_RANGES = tuple(IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

# Characters a capture filter may use: enough for BPF (``tcp[13] & 2 != 0``,
# ``host 10.77.1.10 and port 9999``), nothing a shell or a quoting bug could make use of.
FILTER_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .:/()[]!<>=&|+*-"
)


def is_valid_name(text: str) -> bool:
    """True if ``text`` may name a topology, network, node, service or scenario."""
    return NAME_RE.fullmatch(text) is not None


def subnet_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable lab subnet, or None if it is one."""
    if ":" in text:
        return f"'{text}' is not IPv4: the lab uses IPv4 subnets only"
    if "/" not in text:
        return f"'{text}' has no prefix length; write it like 10.77.1.0/24"
    try:
        loose = IPv4Network(text, strict=False)
    except ValueError:
        return f"'{text}' is not an IPv4 subnet; write it like 10.77.1.0/24"
    if IPv4Address(text.split("/")[0]) != loose.network_address:
        return f"'{text}' has host bits set; the network is {loose}"
    if not MIN_PREFIX <= loose.prefixlen <= MAX_PREFIX:
        return f"prefix /{loose.prefixlen} is outside /{MIN_PREFIX}../{MAX_PREFIX}"
    if not any(loose.subnet_of(r) for r in PRIVATE_RANGES):
        return (
            f"{loose} is not a private range; use one inside 10.0.0.0/8, 172.16.0.0/12 or "
            "192.168.0.0/16 so that lab routes never shadow real ones"
        )
    return None


def overlaps(a: IPv4Network, b: IPv4Network) -> bool:
    """Two CIDR blocks overlap exactly when their address ranges intersect."""
    return int(a.network_address) <= int(b.broadcast_address) and int(b.network_address) <= int(
        a.broadcast_address
    )


def find_overlaps(subnets: Sequence[IPv4Network]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``: subnet ``j`` overlaps the earlier subnet ``i``, the first
    such ``i`` for each ``j``."""
    found = []
    for j, b in enumerate(subnets):
        for i in range(j):
            if overlaps(subnets[i], b):
                found.append((i, j))
                break
    return found


def unsafe_filter_chars(text: str) -> list[str]:
    """The distinct characters of a capture filter outside the safe set, in order."""
    return list(dict.fromkeys(c for c in text if c not in FILTER_CHARS))
