"""YAML out for the compose files: a small emitter instead of yaml.dump, so that a long
command reads one job per line. A scalar is written plain only if YAML reads it back as the
same string; otherwise as a JSON string, which is also a valid YAML double-quoted scalar."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

FLOW_WIDTH = 100
# Characters that end or start something inside a flow list, or a comment; ':' and ' '
# too, which not every YAML parser takes unquoted inside a flow list.
_FLOW_SPECIAL = frozenset(",[]{}#\"'&*!|>%@`: ")


class Command(list[str]):
    """An argument list with layout: ``breaks`` are the indices where a new line starts.
    It is a plain list of strings to everything but the emitter."""

    def __init__(self, parts: Iterable[Sequence[str]]) -> None:
        groups = [list(p) for p in parts if p]
        super().__init__(word for group in groups for word in group)
        starts, total = [], 0
        for group in groups:
            starts.append(total)
            total += len(group)
        self.breaks = tuple(starts[1:])


def scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text and text.strip() == text and not _FLOW_SPECIAL & set(text):
        try:
            if yaml.safe_load(f"[{text}]") == [text]:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def emit(data: dict[str, Any]) -> str:
    """YAML for nested dicts and lists of strings, integers and booleans."""
    return "".join(_mapping(data, 0))


def _mapping(data: dict[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for key, value in data.items():
        head = f"{pad}{scalar(key)}:"
        if isinstance(value, dict):
            out.append(head + "\n")
            out += _mapping(value, indent + 2)
        elif isinstance(value, Command):
            out += _command(head, value, indent + 2)
        elif isinstance(value, list):
            out += _sequence(head, value, indent + 2)
        else:
            out.append(f"{head} {scalar(value)}\n")
    return out


def _sequence(head: str, items: list[Any], indent: int) -> list[str]:
    if all(isinstance(i, str | int | bool) for i in items):
        return _command(head, Command([items]), indent)
    out = [head + "\n"]
    for item in items:
        if isinstance(item, str | int | bool):
            out.append(" " * indent + f"- {scalar(item)}\n")
            continue
        if not isinstance(item, dict):
            raise TypeError(f"cannot emit a list item of type {type(item).__name__}")
        inner = _mapping(item, indent + 2)
        out.append(" " * indent + "- " + inner[0].lstrip())
        out += inner[1:]
    return out


def _command(head: str, command: Command, indent: int) -> list[str]:
    """A flow list: on the key's line if it fits, else one group per line (wrapped)."""
    words = [scalar(w) for w in command]
    one_line = f"{head} [{', '.join(words)}]"
    if len(one_line) <= FLOW_WIDTH and not command.breaks:
        return [one_line + "\n"]
    pad = " " * indent
    bounds = [0, *command.breaks, len(words)]
    lines: list[str] = []
    for start, end in itertools.pairwise(bounds):
        line = pad
        for word in words[start:end]:
            if line != pad and len(line) + len(word) + 2 > FLOW_WIDTH:
                lines.append(line.rstrip())
                line = pad + "  "
            line += word + ", "
        lines.append(line.rstrip())
    body = "\n".join(lines).rstrip(",") + "]"
    return [f"{head} [\n{body}\n"]
