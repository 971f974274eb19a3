"""The outcome of one check, and the helper that judges a check connection by connection.

Every module of the verdict builds on this one and on nothing else of the verdict, so that
the built-in checks and the claims can import each other's parts without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.evidence.analysis.tcp import TcpConnection
from lab.i18n import Msg, english, known, msg
from lab.spec.codec import transient


@dataclass(frozen=True)
class Check:
    """A check's outcome: its name (a stable English id), whether it passed, and its
    evidence in English. The report shows both in its own language."""

    name: str
    passed: bool
    detail: str
    message: Msg | None = field(default=None, compare=False, repr=False, metadata=transient())

    @classmethod
    def said(cls, name: str, passed: bool, message: Msg) -> Check:
        return cls(name, passed, english(message), message)

    def evidence(self) -> Msg | str:
        """The evidence to quote in another check's: its message, else its English."""
        return known(self.detail) if self.message is None else self.message

    def text(self) -> str:
        """The evidence in the current language: its message, else its English detail
        translated by its own words when the catalogues know it (``said.<English>``),
        else as it is."""
        return _text(self.evidence())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def first_failure(
    name: str,
    conns: list[TcpConnection],
    why: Callable[[TcpConnection], str | Msg | None],
    ok: str | Msg,
) -> Check:
    """Pass when ``why`` finds nothing wrong with any connection; else show the first."""
    for conn in conns:
        problem = why(conn)
        if isinstance(problem, str):
            problem = known(problem)
        if problem is not None:
            bad = sum(1 for c in conns if why(c) is not None)
            where = f"{conn.client} -> {conn.server}"
            said = msg(
                "detail.connections_fail", bad=bad, total=len(conns), where=where, problem=problem
            )
            return Check.said(name, False, said)
    ok = known(ok) if isinstance(ok, str) else ok
    return Check.said(name, True, msg("detail.connections_ok", n=len(conns), ok=ok))


def _text(message: Msg | str) -> str:
    return message if isinstance(message, str) else message.text()
