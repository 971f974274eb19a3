"""The analysis's own phrases (why a handshake is not clean, a close's steps) in the
current language. The analysis writes them in English, and summary.json keeps them so;
each is matched here against the English of a catalogue id and, when it reads back the
same, given as that message with the values it holds. A phrase no pattern knows stays
as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lab.i18n import DEFAULT_LANG, Join, Msg, english, join, msg, using

# English phrase -> catalogue id; named groups are the message's fields.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), key)
    for pattern, key in (
        (r"no SYN captured \(capture began after the handshake\)", "phrase.hs.no_syn"),
        (r"the server answered the SYN with RST \(nothing listening\)", "phrase.hs.rst"),
        (r"no SYN-ACK", "phrase.hs.no_syn_ack"),
        (
            r"SYN-ACK acknowledges (?P<ack>\d+), expected client ISN \+ 1 = (?P<want>\d+)",
            "phrase.hs.syn_ack_ack",
        ),
        (r"no ACK of the SYN-ACK", "phrase.hs.no_ack"),
        (r"the client answered the SYN-ACK with RST", "phrase.hs.ack_rst"),
        (
            r"ACK acknowledges (?P<ack>\d+), expected server ISN \+ 1 = (?P<want>\d+)",
            "phrase.hs.ack_ack",
        ),
        (r"ACK has seq (?P<seq>\d+), expected client ISN \+ 1", "phrase.hs.ack_seq"),
        (r"SYN, SYN-ACK, ACK; each ack = peer's ISN \+ 1", "phrase.hs.ok"),
        (r"(?P<side>client|server) RST", "phrase.step.rst"),
        (r"(?P<side>client|server) FIN \(retransmitted\)", "phrase.step.fin_again"),
        (r"(?P<side>client|server) FIN", "phrase.step.fin"),
        (r"(?P<side>client|server) ACKs the (?P<whose>client|server)'s FIN", "phrase.step.ack"),
    )
)
_SIDES = ("side", "whose")


def phrase(text: str) -> Msg | str:
    """One phrase of the analysis as a message, or ``text`` itself when none matches."""
    for pattern, key in _PATTERNS:
        found = pattern.fullmatch(text)
        if found is None:
            continue
        values: dict[str, object] = {
            k: msg(f"side.{v}") if k in _SIDES else v for k, v in found.groupdict().items()
        }
        said = msg(key, **values)
        return said if english(said) == text else text
    return text


def step(description: str) -> Join | str:
    """A close step's description ("server FIN; server ACKs the client's FIN")."""
    said = join(phrase(p) for p in description.split("; "))
    with using(DEFAULT_LANG):
        same = said.text() == description
    return said if same else description


def steps(descriptions: Iterable[str], sep: str) -> Join:
    """Several steps joined by ``sep`` (an id: ``sep.semicolon``, ``sep.arrow``)."""
    return join((step(d) for d in descriptions), sep)
