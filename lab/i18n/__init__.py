"""The lab's languages: every text a user reads, looked up by a stable id in a catalogue
per language (``lab/i18n/<lang>.json``, one flat object of id -> text).

A text names its values as ``str.format`` fields (``{count}``, ``{t:.1f}``); every language
has the same ids and, per id, the same field names (tests/i18n checks both). The language
of a command is chosen once at the edge (``--lang``, else the locale) and set for the
whole process by :func:`set_lang` (the run's worker threads print progress lines too);
:func:`using` holds another one for a block, in its own thread. :func:`t` reads it.
summary.json never holds a translated text: its checks and claims keep their stable
English names, and the report translates them when it draws them.

Standard library only, like ``lab/data``: any layer may import it.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

LANGS = ("en", "zh")
DEFAULT_LANG = "en"
# Where the locale is read from, the first one set wins (as in POSIX).
LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")

_current: ContextVar[str | None] = ContextVar("lab_lang", default=None)
_process_lang = [DEFAULT_LANG]  # set_lang's choice, for every thread


@cache
def catalogue(lang: str) -> Mapping[str, str]:
    """Every message of ``lang``, by id."""
    if lang not in LANGS:
        raise ValueError(f"no language {lang!r}; there are: {', '.join(LANGS)}")
    text = files("lab.i18n").joinpath(f"{lang}.json").read_text(encoding="utf-8")
    messages = json.loads(text)
    if not isinstance(messages, dict):
        raise ValueError(f"lab/i18n/{lang}.json: not an object of id -> text")
    return {str(k): str(v) for k, v in messages.items()}


def choose_lang(given: str | None, environ: Mapping[str, str]) -> str:
    """The language asked for: ``given`` (``--lang``) when there is one, else the locale's
    (``zh_CN.UTF-8``, ``zh_TW``, ``zh`` -> ``zh``), else English."""
    if given:
        return given
    for var in LOCALE_VARS:
        value = environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else DEFAULT_LANG
    return DEFAULT_LANG


def set_lang(lang: str) -> None:
    """The language of this process's texts, outside any :func:`using` block."""
    catalogue(lang)
    _process_lang[0] = lang


def current_lang() -> str:
    return _current.get() or _process_lang[0]


@contextmanager
def using(lang: str) -> Iterator[None]:
    """Texts from ``lang``'s catalogue inside the block (this thread or task only)."""
    catalogue(lang)  # an unknown language fails here, not at its first text
    token = _current.set(lang)
    try:
        yield
    finally:
        _current.reset(token)


def t(key: str, /, **params: object) -> str:
    """The message ``key`` in the current language, its fields filled from ``params``."""
    return catalogue(current_lang())[key].format(**params)


def t_or(key: str, fallback: str, /, **params: object) -> str:
    """Like :func:`t`, but ``fallback`` (already a finished text) when no catalogue has
    ``key``: names made by users or by code not yet translated (a check's name) stay as
    they are."""
    template = catalogue(current_lang()).get(key)
    return fallback if template is None else template.format(**params)


def fields(template: str) -> frozenset[str]:
    """The names of a message's fields: ``"{n} of {total:.1f}"`` -> ``{"n", "total"}``."""
    return frozenset(
        name.split(".")[0].split("[")[0]
        for _text, name, _spec, _conv in string.Formatter().parse(template)
        if name is not None
    )


def translated(key: str, english: str) -> str:
    """``english`` in the current language: the text of ``key`` when ``english`` is what the
    English catalogue holds for it, else ``english`` itself. A shipped experiment's
    description is translated; a user's own, or one edited after ``lab init``, is shown as
    written."""
    if catalogue(DEFAULT_LANG).get(key) != english:
        return english
    return catalogue(current_lang())[key]


def columns(text: str) -> int:
    """Columns ``text`` takes in a terminal: a CJK character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` terminal columns (``right``: aligned to
    the right), for tables that line up in every language."""
    spaces = " " * max(0, width - columns(text))
    return spaces + text if right else text + spaces


@dataclass(frozen=True)
class Msg:
    """A message not yet put into words: its id and its values, any of which may be a
    message too. The verdict builds these so that a check's evidence reads in the report's
    language; :func:`english` gives the text summary.json keeps."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def text(self) -> str:
        """In the current language."""
        values = {k: _text(v) for k, v in self.params.items()}
        return t(self.key, **values)


@dataclass(frozen=True)
class Join:
    """Texts (messages or finished strings) put in words one after the other, with the
    separator the id ``sep`` holds in the current language (``"; "`` in English)."""

    parts: tuple[object, ...]
    sep: str = "sep.semicolon"

    def text(self) -> str:
        return t(self.sep).join(str(_text(p)) for p in self.parts)


@dataclass(frozen=True)
class Reread:
    """An English text a record kept (a run's error), put into words by :func:`reread`
    only when it is shown: in the language of that moment."""

    english: str
    prefix: str | tuple[str, ...] = "error."

    def text(self) -> str:
        return reread(self.english, self.prefix)

    def __str__(self) -> str:
        return self.english


def _text(value: object) -> object:
    return value.text() if isinstance(value, Msg | Join | Reread) else value


def msg(key: str, /, **params: object) -> Msg:
    return Msg(key, params)


def known(text: str) -> Msg | str:
    """``text`` as the message ``said.<text>`` when the catalogues hold that id: a fixed
    English sentence (no values) translated by its own words, like a check's name."""
    key = f"said.{text}"
    return Msg(key) if catalogue(DEFAULT_LANG).get(key) == text else text


def reread(text: str, prefix: str | tuple[str, ...]) -> str:
    """``text``, an English message of an id starting with ``prefix`` as a record kept it
    (run.json's error, a topology's problem), in the current language; ``text`` itself
    when no such message reads back as exactly ``text``. The first message that does, in
    the catalogue's order, is taken: a narrower one goes before a wider one."""
    for one in (prefix,) if isinstance(prefix, str) else prefix:  # the first prefix first
        for key, template in _english_of(one):
            values = _parse(template, text)
            if values is not None:
                return t(key, **_reread_values(values, prefix, text))
    return text


@cache
def _english_of(prefix: str) -> tuple[tuple[str, str], ...]:
    """The English messages whose ids start with ``prefix``, in the catalogue's order."""
    return tuple((k, v) for k, v in catalogue(DEFAULT_LANG).items() if k.startswith(prefix))


# The fields whose values are messages of their own (a hint, a kind, an error quoted in
# another), read back too; the others (names, keys, numbers) are the user's own words.
NESTED_FIELDS = frozenset(
    {"got", "want", "hint", "rule", "what", "why", "kind", "known", "where", "error",
     "detail", "context", "evidence", "status", "limit", "problem"}
)  # fmt: skip


@cache
def _pattern(template: str) -> tuple[re.Pattern[str], frozenset[str]] | None:
    """The regular expression that reads ``template``'s values back, and the names of
    its fields with a format spec (numbers); None for a message that is only its values
    ("{error}"), which would read any text back."""
    pattern, names = "", []
    specs: set[str] = set()
    literal_text = ""
    for literal, name, spec, _conv in string.Formatter().parse(template):
        pattern += re.escape(literal)
        literal_text += literal
        if name is not None:
            # A hint follows a value with nothing between: it is told by its parenthesis.
            value = r" \(.+\)" if name == "hint" else ".+?"
            pattern += f"(?P<{name}>{value})" if name not in names else f"(?P={name})"
            names.append(name)
            if spec:
                specs.add(name)
    if not literal_text.strip():
        return None
    return re.compile(pattern, re.DOTALL), frozenset(specs)


def _parse(template: str, text: str) -> dict[str, object] | None:
    """The values that make ``template`` give ``text``, or None."""
    compiled = _pattern(template)
    if compiled is None:
        return None
    regex, specs = compiled
    found = regex.fullmatch(text)
    if found is None:
        return None
    values: dict[str, object] = {}
    for name, value in found.groupdict().items():
        try:
            values[name] = float(value) if name in specs else value
        except ValueError:
            return None
    return values if template.format(**values) == text else None


def _reread_values(
    values: dict[str, object], prefix: str | tuple[str, ...], whole: str
) -> dict[str, object]:
    """A message's values that are themselves messages of ``prefix``, read back too."""
    return {
        k: reread(v, prefix) if k in NESTED_FIELDS and isinstance(v, str) and v != whole else v
        for k, v in values.items()
    }


def join(parts: Iterable[object], sep: str = "sep.semicolon") -> Join:
    return Join(tuple(parts), sep)


def english(message: Msg) -> str:
    with using(DEFAULT_LANG):
        return message.text()
