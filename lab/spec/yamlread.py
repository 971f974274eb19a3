"""Reading a topology file's text (its bytes come from ``lab.spec.filebytes``): its YAML
composed into nodes that keep their lines, and typed getters over those nodes that report
each problem as ``FILE:LINE: key.path: message``.

The YAML is composed (not constructed) with PyYAML's safe loader, so every value keeps its
line, duplicate keys are visible (the constructor would silently keep the last), and no tag
can ever turn into a Python object. ``Reader.fields`` and ``Reader.value`` are the generic
validators: they check a mapping's keys and a plain value against ``lab.spec.keys``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TypeVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lab.spec.keys import NAME_RULE, Key, Scalar, Section
from lab.spec.loader import ALIAS_TAG as _ALIAS_TAG
from lab.spec.loader import MAX_DEPTH, Loader, TooDeep
from lab.spec.rules import is_valid_name

_LONGEST_INT = _SHOWN = 40  # characters: of an integer (any in range is shorter); quoted

_YAML = "tag:yaml.org,2002:"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
_CONSTRUCT = SafeConstructor()
# The tags the safe loader knows; any other explicit tag is refused, never interpreted.
_KNOWN_KINDS = frozenset(
    ("str", "int", "float", "bool", "null", "timestamp", "binary", "map", "seq", "set", "omap",
     "pairs")
)  # fmt: skip

PathPart = str | int
_Num = TypeVar("_Num", int, float)
KeyPath = tuple[PathPart, ...]


def render_path(path: KeyPath) -> str:
    """``("nodes", "c1", "interfaces")`` -> ``nodes.c1.interfaces``; ``[2]`` for list items;
    odd keys (spaces, punctuation) quoted as ``["a;b"]`` so the path stays unambiguous."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += ("." if out else "") + part
        else:
            out += "[" + json.dumps(part, ensure_ascii=False) + "]"
    return out or "(document)"


@dataclass
class Problems:
    filename: str
    items: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, line: int, path: KeyPath, message: str) -> None:
        text = f"{self.filename}:{line}: {render_path(path)}: {message}"
        self.items.append((line, len(self.items), text))

    def lines(self) -> list[str]:
        """In file order; problems on one line keep the order they were found in."""
        return [text for _, _, text in sorted(self.items)]


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def tag_kind(tag: str) -> str:
    return tag[len(_YAML) :] if tag.startswith(_YAML) else tag


def describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    kinds = {
        "int": "an integer",
        "float": "a number",
        "bool": "a boolean",
        "null": "nothing (null)",
        "str": "a string",
        "timestamp": "a date",
    }
    return kinds.get(tag_kind(node.tag), f"a value tagged {short_tag(node.tag)}")


def short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag


def standard(tag: str) -> bool:
    """A tag of YAML's own that the safe loader would read as plain data."""
    return tag.startswith(_YAML) and tag_kind(tag) in _KNOWN_KINDS


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _YAML + "null"


def is_empty(node: Node) -> bool:
    """An empty mapping or list (whose entries would otherwise be read as fine)."""
    return isinstance(node, MappingNode | SequenceNode) and not node.value


# --- YAML composition --------------------------------------------------------------------


def compose(text: str, problems: Problems) -> Node | None:
    # PyYAML checks characters as it is created, outside any error it marks with a line.
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        char = f"#x{ord(bad.group()):04x}"
        problems.add(line, (), f"unacceptable character {char}: control characters are not allowed")
        return None
    loader = Loader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        detail = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            context = f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
        problems.add(line, (), f"YAML syntax error: {detail}{context}")
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML's remaining errors are marked
        problems.add(1, (), f"YAML syntax error: {exc}")
    except TooDeep as exc:
        problems.add(
            exc.line, (), f"the document is nested too deeply (more than {MAX_DEPTH} levels)"
        )
    finally:
        loader.dispose()
    return None


# --- typed access to composed nodes ------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    key: str
    line: int  # of the key
    value: Node


class Reader:
    """Typed getters over composed nodes; each reports what is wrong and returns None."""

    def __init__(self, problems: Problems) -> None:
        self.p = problems

    def _refused(self, node: Node, path: KeyPath) -> bool:
        """Report an alias, or an explicit tag YAML does not define (``!!python/...``)."""
        if node.tag == _ALIAS_TAG:
            self.p.add(
                line_of(node),
                path,
                f"aliases ({node.value}) are not supported; write the value out",
            )
            return True
        if not standard(node.tag):
            self.p.add(line_of(node), path, f"unsupported tag {short_tag(node.tag)}; remove it")
            return True
        return False

    def _scalar(self, node: Node, path: KeyPath, want: str) -> ScalarNode | None:
        if self._refused(node, path):
            return None
        if not isinstance(node, ScalarNode):
            self.p.add(line_of(node), path, f"must be {want}, got {describe(node)}")
            return None
        return node

    def entries(self, node: Node, path: KeyPath, want: str = "a mapping") -> list[Entry] | None:
        """A mapping's entries in file order; duplicate and non-name keys reported and dropped."""
        if self._refused(node, path):
            return None
        if not isinstance(node, MappingNode):
            self.p.add(line_of(node), path, f"must be {want}, got {describe(node)}")
            return None
        seen: dict[str, int] = {}
        out = []
        for knode, vnode in node.value:
            if knode.tag == _YAML + "merge":
                self.p.add(
                    line_of(knode), path, "merge keys (<<) are not supported; write the keys out"
                )
                continue
            if not isinstance(knode, ScalarNode) or not standard(knode.tag):
                self.p.add(
                    line_of(knode), path, f"a key must be a plain name, got {describe(knode)}"
                )
                continue
            key, line = str(knode.value), line_of(knode)
            if key in seen:
                self.p.add(
                    line,
                    (*path, key),
                    f"duplicate key '{key}' (first at line {seen[key]}); YAML would silently "
                    "keep only the last one",
                )
                continue
            seen[key] = line
            out.append(Entry(key, line, vnode))
        return out

    def fields(
        self,
        node: Node,
        path: KeyPath,
        anchor: int,
        section: Section,
        required: Sequence[str] | None = None,
    ) -> dict[str, Entry] | None:
        """A mapping holding keys of ``section``: unknown keys and missing required keys
        (the section's own, or ``required`` when they depend on the file) are reported,
        missing ones at ``anchor``, the line that introduced the mapping."""
        entries = self.entries(node, path)
        if entries is None:
            return None
        known = section.names
        out: dict[str, Entry] = {}
        for e in entries:
            if e.key in known:
                out[e.key] = e
            else:
                hint = suggest(e.key, known) or f" (known keys: {', '.join(known)})"
                self.p.add(e.line, (*path, e.key), f"unknown key '{e.key}'{hint}")
        for key in section.required if required is None else required:
            if key not in out:
                self.p.add(anchor, path, f"missing required key '{key}'")
        return out

    def value(self, key: Key, node: Node, path: KeyPath) -> Scalar | IPv4Address | None:
        """A plain value checked against its declaration: kind, range, choices."""
        if key.kind == "integer":
            return self.integer(node, path, key.bounds or (0, 2**31 - 1))
        if key.kind == "number":
            return self.number(node, path, key.bounds or (0, 2**31 - 1))
        if key.kind == "boolean":
            return self.boolean(node, path)
        if key.kind == "name":
            return self.name(node, path)
        if key.kind == "address":
            return self.address(node, path)
        if key.kind == "choice":
            return self.choice(node, path, key.what, key.choices)
        assert key.kind == "text", f"{key.name} is not a plain value"
        return self.text(node, path)

    def choice(self, node: Node, path: KeyPath, what: str, choices: Sequence[str]) -> str | None:
        value = self.text(node, path)
        if value is None or value in choices:
            return value
        hint = suggest(value, choices)
        self.p.add(
            line_of(node), path, f"unknown {what} '{value}'{hint}; {what}s: {', '.join(choices)}"
        )
        return None

    def items(self, node: Node, path: KeyPath) -> list[Node] | None:
        if self._refused(node, path):
            return None
        if not isinstance(node, SequenceNode):
            self.p.add(line_of(node), path, f"must be a list, got {describe(node)}")
            return None
        return list(node.value)

    def text(self, node: Node, path: KeyPath) -> str | None:
        """Any scalar but null, taken verbatim: ``no`` stays "no", ``1.0`` stays "1.0"."""
        scalar = self._scalar(node, path, "text")
        if scalar is None:
            return None
        if tag_kind(scalar.tag) == "null":
            self.p.add(line_of(node), path, "must be text, got nothing (null)")
            return None
        return str(scalar.value)

    def name(self, node: Node, path: KeyPath) -> str | None:
        value = self.text(node, path)
        if value is not None and not is_valid_name(value):
            self.p.add(line_of(node), path, f"bad name {value!r}: {NAME_RULE}")
            return None
        return value

    def integer(self, node: Node, path: KeyPath, bounds: tuple[int, int]) -> int | None:
        scalar = self._scalar(node, path, "an integer")
        if scalar is None:
            return None
        kind = tag_kind(scalar.tag)
        if kind != "int":
            hint = " (remove the quotes)" if kind == "str" and is_int_text(scalar.value) else ""
            self.p.add(line_of(node), path, f"must be an integer, got {describe(scalar)}{hint}")
            return None
        return self._in_range(_int_value(scalar), node, path, bounds)

    def number(self, node: Node, path: KeyPath, bounds: tuple[int, int]) -> float | None:
        scalar = self._scalar(node, path, "a number")
        if scalar is None:
            return None
        kind = tag_kind(scalar.tag)
        if kind == "int":
            whole = _int_value(scalar)
            value = None if whole is None else float(whole)
        elif kind == "float":
            value = float(_CONSTRUCT.construct_yaml_float(scalar))
        else:
            self.p.add(line_of(node), path, f"must be a number, got {describe(scalar)}")
            return None
        return self._in_range(value, node, path, bounds)

    def _in_range(
        self, value: _Num | None, node: Node, path: KeyPath, bounds: tuple[int, int]
    ) -> _Num | None:
        lo, hi = bounds
        if value is None or not lo <= value <= hi:  # also catches .nan
            shown = scalar_text(node)
            shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "..."
            self.p.add(line_of(node), path, f"{shown} is out of range {lo}..{hi}")
            return None
        return value

    def boolean(self, node: Node, path: KeyPath) -> bool | None:
        scalar = self._scalar(node, path, "true or false")
        if scalar is None:
            return None
        if tag_kind(scalar.tag) != "bool":
            self.p.add(line_of(node), path, f"must be true or false, got {describe(scalar)}")
            return None
        return bool(_CONSTRUCT.construct_yaml_bool(scalar))

    def address(self, node: Node, path: KeyPath) -> IPv4Address | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            return IPv4Address(value)
        except ValueError:
            self.p.add(line_of(node), path, f"{value!r} is not an IPv4 address")
            return None


def _int_value(scalar: ScalarNode) -> int | None:
    """An integer scalar's value, None if too long to be in any key's range: PyYAML would
    convert it at any cost (5000 digits: ValueError; a long ``1:2:3:...``: quadratic)."""
    text = str(scalar.value)
    return None if len(text) > _LONGEST_INT else int(_CONSTRUCT.construct_yaml_int(scalar))


def scalar_text(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else describe(node)


def is_int_text(text: str) -> bool:
    return re.fullmatch(r"[+-]?[0-9]+", text.strip()) is not None
