"""The lab's exceptions. The library raises these; only the CLI prints and exits."""

from __future__ import annotations

import re
import signal
from typing import Self

from lab.i18n import DEFAULT_LANG, Join, Msg, Reread, current_lang, english, join, reread

# The messages an error raised without one (in English, as run.json keeps it) is read
# back by, for the user's language.
READ_BACK = ("error.", "live.", "backend.", "spec.")


class LabError(Exception):
    """Base of every error the lab reports to a user. ``exit_code`` is what the CLI returns.

    Its text (``str``) is English, as run.json records it; one made by :meth:`said` also
    keeps its message, which the CLI prints in the user's language (:meth:`text`)."""

    exit_code = 1
    message: Msg | None = None

    @classmethod
    def said(cls, message: Msg) -> Self:
        error = cls(english(message))
        error.message = message
        return error

    def text(self) -> str:
        """The error in the current language: its message, else its English read back by
        the catalogue (as it is when no message reads it)."""
        return read_back(str(self)) if self.message is None else self.message.text()


def read_back(text: str) -> str:
    """An English text of the lab's (an error, a live lab's reply) in the current language."""
    return text if current_lang() == DEFAULT_LANG else reread(text, READ_BACK)


def read_back_all(texts: list[str]) -> Join:
    """English problems (a backend's refusals), each read back when shown, one after the
    other."""
    return join(Reread(text, READ_BACK) for text in texts)


class TopologyError(LabError):
    """A topology file is invalid. Carries every problem found, each already located:
    ``problems`` in English, ``messages`` (when made by :meth:`said_all`) as said, for
    the CLI to print in the user's language."""

    exit_code = 2

    def __init__(self, problems: list[str], messages: list[Msg | Reread] | None = None) -> None:
        self.problems = list(problems)
        self.messages: list[Msg | Reread] = list(messages or [])
        super().__init__("\n".join(self.problems))

    @classmethod
    def said_all(cls, messages: list[Msg]) -> TopologyError:
        return cls([english(m) for m in messages], list(messages))

    def lines(self) -> list[str]:
        """Every problem in the current language: its message, else its English read back
        by the catalogue's ``spec.`` messages after its location, which stays as it is."""
        if len(self.messages) == len(self.problems):
            return [m.text() for m in self.messages]
        if current_lang() == DEFAULT_LANG:
            return list(self.problems)
        return [_located(p) for p in self.problems]


# A located problem: ``FILE:LINE: key.path: message`` (the path ``(document)``, or keys
# and ``[N]`` indexes and ``["odd key"]``s, as lab.spec.yamlread renders it).
_PART = r'(?:[A-Za-z0-9_-]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])'
LOCATED = re.compile(rf"(.*?:\d+: (?:\(document\)|{_PART}(?:\.?{_PART})*): )(.*)", re.DOTALL)


def _located(problem: str) -> str:
    found = LOCATED.fullmatch(problem)
    if found is None:  # a build's failure, say
        return Reread(problem, ("spec.", *READ_BACK)).text()
    return found.group(1) + Reread(found.group(2), "spec.").text()


class UsageError(LabError):
    """Bad command-line input."""

    exit_code = 2


class BackendUnavailable(LabError):
    """A backend cannot be used here (no root, no engine, no image); the message says what to do."""


class BackendError(LabError):
    """A backend operation failed while bringing up, running on, or tearing down hosts."""


class CommandTimeout(BackendError):
    """A command on a node did not finish within its timeout."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM. A KeyboardInterrupt, so that no
    ``except Exception`` swallows it; teardown still runs."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}; the run was torn down")
        self.exit_code = 130 if signum == signal.SIGINT else 1
