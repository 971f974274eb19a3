"""Small shared pieces of the analysis layer: the (ip, port) endpoint and JSON conversion.

Every result dataclass of ``lab.evidence.analysis`` inherits :class:`ToDict`, so ``obj.to_dict()``
returns plain dicts, lists, strings, numbers, booleans and None, ready for ``json.dumps``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from enum import Enum
from typing import Any, NamedTuple


class Endpoint(NamedTuple):
    """One side of a conversation. ``ip`` is a dotted/colon string (or ``"*"`` in a
    snapshot's wildcard address); ``port`` is 0 where a snapshot shows ``*``."""

    ip: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "port": self.port}


def jsonable(value: Any) -> Any:
    """Turn a result value into JSON-serialisable data.

    Bytes (packet payloads) become text decoded as UTF-8 with undecodable bytes escaped
    (``\\xNN``): the course's protocols are text, and the dictionary server speaks UTF-8
    Chinese, which then reads as itself in summary.json.
    """
    if isinstance(value, Endpoint):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Counter | Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return value


class ToDict:
    """Mixin for frozen result dataclasses: ``to_dict()`` is their JSON form."""

    def to_dict(self) -> dict[str, Any]:
        data = jsonable(self)
        assert isinstance(data, dict)
        return data
