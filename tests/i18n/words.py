"""What is left in English in a Chinese text: the ASCII words of 4+ letters that are
neither quoted values nor names nor the protocol's and the system's own words."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Words a Chinese sentence of the lab may hold: the protocol's and the system's names
# (TIME_WAIT, SACK, EADDRINUSE ...), the snapshots' phases as the run names them, and
# the ones a program prints (its name, ``pid``).
ALLOWED = frozenset(
    {
        "TIME_WAIT", "CLOSE_WAIT", "LISTEN", "ESTABLISHED", "SYN-ACK", "ACKs",
        "sackOK", "wscale", "after", "during", "before", "watch", "expect",
        "SIGCHLD", "SIGTERM", "SA_RESTART", "SHUT_WR", "reuseaddr", "backlog",
        "read", "pid", "python", "netem", "delay", "EtherType",
    }
)  # fmt: skip
# What a sentence quotes: payloads and log lines in quotes, paths and commands in a
# node's own words, a command's options.
_QUOTED = re.compile(r"b?'[^']*'|b?\"[^\"]*\"|`[^`]*`|\S*/\S*|(?<!\w)--?[A-Za-z][\w-]*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_-]{3,}")


def english_words(text: str, names: Iterable[str] = ()) -> list[str]:
    """The ASCII words of 4+ letters in ``text`` that are neither quoted nor one of
    ``names`` nor of :data:`ALLOWED` nor all capitals."""
    known = set(names)
    words = _WORD.findall(_QUOTED.sub(" ", text))
    return [w for w in words if w not in ALLOWED and w not in known and not w.isupper()]
