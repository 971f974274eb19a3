"""Typed JSON records: dataclasses read from and written to JSON, strictly.

A record class is a dataclass whose fields have JSON types: ``str``, ``int``, ``float``
(an integer is accepted and kept as it is), ``bool``, ``None``, ``list[X]``,
``dict[str, X]``, unions of these (``X | None`` above all), other record classes, and
``Any`` (any JSON value, kept as read). A field without a default is a required key; one
with a default may be missing. A field is written under its own name unless its metadata
says otherwise (``json_name("from")``: ``from`` is a Python keyword).

Reading is strict: a wrong type, a missing required key or an unknown key raises a
:class:`RecordError` that names the file and the place, e.g. ``run.json:
scenarios.x.clients.c1.result: expected an object``. A record read from JSON is written
back with the keys it was read with, in their order, so that a round trip is exact.

:func:`json_schema` gives the JSON Schema of a record class, from the same field types.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import types
from pathlib import Path
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from lab.errors import LabError
from lab.spec.filebytes import InputRefused, read_limited

R = TypeVar("R")

_JSON_NAME = "json"
# Metadata naming the field whose None leaves this one out of the JSON (itself by default).
_OMIT_IF_NONE = "omit_if_none"
_TRANSIENT = "transient"
# Where a record read from JSON keeps the keys it was read with.
_KEYS = "_json_keys"
# No record nests deeper than a few levels (Any fields hold small values): anything deeper
# is refused as read, so that no later walk of the data can run out of stack.
MAX_JSON_DEPTH = 64


class RecordError(LabError):
    """A JSON record does not have the expected shape; the message locates the problem."""

    exit_code = 2


class _Mismatch(Exception):
    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}" if where else what)


def json_name(name: str) -> dict[str, Any]:
    """Field metadata: the field is written under another JSON key, e.g.
    ``field(metadata=json_name("from"))``."""
    return {_JSON_NAME: name}


def omit_if_none(unless: str | None = None) -> dict[str, Any]:
    """Field metadata: the field is left out of the JSON while it (or the field ``unless``
    names) is None, a fact recorded only once it is known, e.g.
    ``field(default=None, metadata=omit_if_none())``."""
    return {_OMIT_IF_NONE: unless or True}


def transient() -> dict[str, Any]:
    """Field metadata: the field is no part of the JSON (not written, not read, not in the
    schema); it needs a default. E.g. what a record carries for this process only."""
    return {_TRANSIENT: True}


def _name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get(_JSON_NAME, f.name))


def _fields(cls: Any) -> list[dataclasses.Field[Any]]:
    """A record's fields that are in its JSON."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get(_TRANSIENT)]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def describe(tp: Any) -> str:
    """What a value of a field type looks like, in words."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(arm) for arm in get_args(tp))
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any JSON value"
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "an object"
    return names[tp]


def from_json(cls: type[R], data: Any, source: str) -> R:
    """``data`` (parsed JSON) as a ``cls``; ``source`` (a file name) starts any error."""
    try:
        return cast(R, _decode(cls, data, ""))
    except _Mismatch as exc:
        raise RecordError(f"{source}: {exc}") from None


def decode(tp: Any, data: Any, source: str) -> Any:
    """``data`` as a value of the field type ``tp`` (say a union of records)."""
    try:
        return _decode(tp, data, "")
    except _Mismatch as exc:
        raise RecordError(f"{source}: {exc}") from None


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _decode_record(cast(type, tp), value, where)
    if origin in (Union, types.UnionType):
        return _decode_union(tp, value, where)
    if origin is list and isinstance(value, list):
        (arm,) = get_args(tp)
        return [_decode(arm, v, _join(where, i)) for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        arm = get_args(tp)[1]
        return {k: _decode(arm, v, _join(where, k)) for k, v in value.items()}
    if origin is None and _is_scalar(tp, value):
        return value
    raise _Mismatch(where, f"expected {describe(tp)}")


def _is_scalar(tp: Any, value: Any) -> bool:
    if tp is bool or tp is type(None):
        return isinstance(value, bool) if tp is bool else value is None
    if isinstance(value, bool):
        return False  # JSON true is no number
    if tp is float:
        return isinstance(value, int | float)
    return tp in (int, str) and isinstance(value, tp)


def _decode_union(tp: Any, value: Any, where: str) -> Any:
    arms = get_args(tp)
    if value is None and type(None) in arms:
        return None
    real = [arm for arm in arms if arm is not type(None)]
    if len(real) == 1:  # X | None: X's own error says where, deep inside
        return _decode(real[0], value, where)
    misses: list[_Mismatch] = []
    for arm in real:
        try:
            return _decode(arm, value, where)
        except _Mismatch as exc:
            misses.append(exc)
    if isinstance(value, dict):  # an object of none of the records: the deepest miss
        raise max(misses, key=lambda m: len(str(m).split(": ")[0]))
    raise _Mismatch(where, f"expected {describe(tp)}")


def _decode_record(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _Mismatch(where, "expected an object")
    fields = {_name(f): f for f in _fields(cls)}
    for key in value:
        if key not in fields:
            raise _Mismatch(_join(where, key), "unexpected key")
    kwargs: dict[str, Any] = {}
    for key, f in fields.items():
        if key in value:
            kwargs[f.name] = _decode(_hints(cls)[f.name], value[key], _join(where, key))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _Mismatch(_join(where, key), "missing (required)")
    record = cls(**kwargs)
    object.__setattr__(record, _KEYS, tuple(value))
    return record


def to_json(value: Any) -> Any:
    """A record (or a list, dict or scalar of records) as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_record(value)
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def _encode_record(record: Any) -> dict[str, Any]:
    fields = {_name(f): f for f in _fields(record)}
    keys: tuple[str, ...] | None = getattr(record, _KEYS, None)
    out: dict[str, Any] = {}
    for key in keys if keys is not None else tuple(fields):
        f = fields.get(key)
        if f is None or (keys is None and _omitted(record, f)):
            continue
        out[key] = to_json(getattr(record, f.name))
    return out


def _omitted(record: Any, f: dataclasses.Field[Any]) -> bool:
    rule = f.metadata.get(_OMIT_IF_NONE)
    if rule is None:
        return False
    return getattr(record, f.name if rule is True else rule) is None


def json_schema(cls: type, title: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a record class, every record class it uses
    under ``$defs``."""
    defs: dict[str, Any] = {}
    root = _schema(cls, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _record_schema(cast(type, tp), defs)
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema(arm, defs) for arm in get_args(tp)]}
    if origin is list:
        return {"type": "array", "items": _schema(get_args(tp)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(get_args(tp)[1], defs)}
    if tp is Any:
        return {}
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return {"type": "null" if tp is type(None) else names[tp]}


def _record_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name not in defs:
        defs[name] = {}  # placeholder: a record may (indirectly) contain itself
        props: dict[str, Any] = {}
        required: list[str] = []
        for f in _fields(cls):
            props[_name(f)] = _schema(_hints(cls)[f.name], defs)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(_name(f))
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if cls.__doc__ and not cls.__doc__.startswith(f"{name}("):
            schema = {"description": " ".join(cls.__doc__.split()), **schema}
        defs[name] = {**schema, "required": required, "additionalProperties": False}
    return {"$ref": f"#/$defs/{name}"}


def read_json_object(path: Path, limit: int) -> dict[str, Any]:
    """A record file's JSON object, read from a regular file of at most ``limit`` bytes.
    Whatever is wrong with it is one ``RecordError`` line naming the file."""
    try:
        data = read_limited(path, limit, pipes=False)
    except InputRefused as exc:
        raise RecordError(f"{path}: {exc}") from None
    return parse_json_object(data, str(path))


def parse_json_object(data: bytes, source: str) -> dict[str, Any]:
    """``data`` as a JSON object; not UTF-8, not JSON, cut short, nested too deeply, a
    number too long to convert or not an object is a ``RecordError`` naming ``source``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        cut = " (the file is cut short)" if exc.pos >= len(text.rstrip()) else ""
        raise RecordError(
            f"{source}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{cut}"
        ) from None
    except RecursionError:
        raise RecordError(f"{source}: nested too deeply to be a record") from None
    except ValueError:  # the only other: an integer longer than Python converts
        digits = sys.get_int_max_str_digits()
        raise RecordError(f"{source}: holds a number of more than {digits} digits") from None
    if not isinstance(value, dict):
        raise RecordError(f"{source}: holds a JSON {_json_kind(value)}, not an object")
    if _depth_over(value, MAX_JSON_DEPTH):
        raise RecordError(f"{source}: nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def _json_kind(value: Any) -> str:
    kinds = ((list, "list"), (str, "string"), (bool, "boolean"), (int | float, "number"))
    return next((name for tp, name in kinds if isinstance(value, tp)), "null")


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists or objects deeper than ``limit``, walked without
    recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in children)
    return False
