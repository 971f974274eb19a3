"""The shape of the key tables: a ``Key`` and the ``Section`` that orders them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "name", "text", "integer", "number", "boolean", "address", "subnet", "choice",
    "mapping", "list",
]  # fmt: skip
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Key:
    """One key of a section. ``what`` names a choice's values in messages ("unknown
    probe ..."); ``required_when`` replaces the plain yes/no of a conditionally required
    key in the docs; ``type_doc`` describes a structured value the kind alone cannot."""

    name: str
    kind: Kind
    help: str
    required: bool = False
    default: Scalar | None = None
    bounds: tuple[int, int] | None = None
    choices: tuple[str, ...] = ()
    what: str = ""
    required_when: str = ""
    type_doc: str = ""


@dataclass(frozen=True)
class Section:
    """An ordered table of keys: the keys one mapping of the file may hold."""

    title: str  # how the docs and the schema name the mapping, e.g. ``nodes.NAME``
    keys: tuple[Key, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys if k.required)

    def __getitem__(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)
