"""The outcome of one check, and the helper that judges a check connection by connection.

Every module of the verdict builds on this one and on nothing else of the verdict, so that
the built-in checks and the claims can import each other's parts without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from lab.evidence.analysis.tcp import TcpConnection


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def first_failure(
    name: str, conns: list[TcpConnection], why: Callable[[TcpConnection], str | None], ok: str
) -> Check:
    """Pass when ``why`` finds nothing wrong with any connection; else show the first."""
    for conn in conns:
        problem = why(conn)
        if problem is not None:
            bad = sum(1 for c in conns if why(c) is not None)
            where = f"{conn.client} -> {conn.server}"
            return Check(name, False, f"{bad}/{len(conns)} connections fail; {where}: {problem}")
    return Check(name, True, f"{len(conns)}/{len(conns)} connections: {ok}")
