"""A JSON Schema (draft 2020-12) of topology files, built from ``lab.spec.keys``, for
editors' YAML language servers: types, ranges, choices, defaults, help text as
descriptions, required keys, no unknown keys. ``lab schema`` prints it.

The schema catches what a single value or mapping can show; the checks across sections
(overlapping subnets, unknown node names, reachability) are ``lab validate``'s alone.
"""

from __future__ import annotations

from typing import Any

from lab.spec.claims import CLAIM_SPECS
from lab.spec.keys import (
    BUG,
    BUILTIN_CHECKS,
    CAPTURE,
    ENGINE_NAME_RE,
    IMPAIR,
    JUMP,
    MAX_FILTER_CHARS,
    MAX_NETWORKS,
    MAX_NODES,
    MAX_RESTARTS,
    NAME_PATTERN,
    NETEM,
    NETWORK,
    NODE,
    NODE_NETEM,
    OPTIONS,
    PROGRAM,
    RESTART,
    SCENARIO,
    SERVICE,
    SSH,
    SSH_HOST_RE,
    SSH_PYTHON_RE,
    SSH_USER_RE,
    TOP,
    Key,
    Section,
)  # fmt: skip
from lab.spec.model import SERVER_PROGRAMS, SERVICE_OPTIONS
from lab.spec.rules import FILTER_CHARS

Schema = dict[str, Any]
_NAME: Schema = {"type": "string", "pattern": f"^{NAME_PATTERN}$"}
# Free text: YAML reads ``no`` or ``1.0`` as a boolean or number, the lab takes it verbatim.
_TEXT: Schema = {"type": ["string", "number", "boolean"]}
_ITEM: Schema = {"type": ["string", "number", "boolean"], "pattern": "^[^\\r\\n\\x00]+$"}
# Escape only what a character class needs: editors run this as an ECMAScript regex.
_FILTER_PATTERN = (
    "^[" + "".join("\\" + c if c in "\\[]^-" else c for c in sorted(FILTER_CHARS)) + "]*$"
)
_PLAIN: dict[str, Schema] = {
    "name": _NAME,
    "text": _TEXT,
    "boolean": {"type": "boolean"},
    "address": {"type": "string", "format": "ipv4"},
    "subnet": {"type": "string", "pattern": "^[0-9.]+/[0-9]{1,2}$"},
}


def _plain(key: Key) -> Schema:
    if key.kind in ("integer", "number"):
        out: Schema = {"type": key.kind}
        if key.bounds is not None:
            out["minimum"], out["maximum"] = key.bounds
        return out
    if key.kind == "choice":
        return {"type": "string", "enum": list(key.choices)}
    return dict(_PLAIN[key.kind])


def _object(section: Section, special: dict[str, Schema], required: bool = True) -> Schema:
    """A mapping of ``section``'s keys; ``special`` gives the structured keys' schemas."""
    props = {}
    for key in section.keys:
        prop = {**(special[key.name] if key.name in special else _plain(key))}
        prop["description"] = key.help
        if key.default is not None:
            prop["default"] = key.default
        props[key.name] = prop
    out: Schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required and section.required:
        out["required"] = list(section.required)
    return out


def _named(value: Schema, most: int | None = None) -> Schema:
    out: Schema = {
        "type": "object",
        "propertyNames": _NAME,
        "additionalProperties": value,
        "minProperties": 1,
    }
    if most is not None:
        out["maxProperties"] = most
    return out


def _ssh() -> Schema:
    patterns = {"host": SSH_HOST_RE, "user": SSH_USER_RE, "python": SSH_PYTHON_RE}
    special: dict[str, Schema] = {
        k: {"type": "string", "pattern": f"^{p.pattern}$"} for k, p in patterns.items()
    }
    special["key"] = {"type": "string", "minLength": 1}
    return _object(SSH, {**special, "jump": _object(JUMP, special)})


def _service() -> Schema:
    out = _object(
        SERVICE,
        {
            "node": _NAME,
            # A lab program, or a user program of ``programs`` (a name without '_').
            "program": {"anyOf": [{"enum": list(SERVER_PROGRAMS)}, _NAME]},
            "options": _object(OPTIONS, {}),
        },
    )
    # Each program takes only its own options.
    out["allOf"] = [
        {
            "if": {"properties": {"program": {"const": program}}, "required": ["program"]},
            "then": {"properties": {"options": {"propertyNames": {"enum": list(options)}}}},
        }
        for program, options in SERVICE_OPTIONS.items()
    ]
    return out


def _program() -> Schema:
    words: Schema = {"type": "array", "items": {"type": "string"}, "minItems": 1}
    sources: Schema = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
    return _object(PROGRAM, {"sources": sources, "build": words, "run": words})


def _scenario() -> Schema:
    items: Schema = {"type": "array", "items": _ITEM, "minItems": 1}
    special = {
        "service": _NAME,
        "client_program": _NAME,
        "clients": {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True},
        "send": items,
        "expect": items,
        "claims": {"type": "array", "items": {"enum": list(CLAIM_SPECS)}, "uniqueItems": True},
        "impair": {
            "type": "array",
            "items": _object(IMPAIR, {"node": _NAME, "network": _NAME, "netem": _netem()}),
        },
        "restart": {
            "type": "array",
            "items": _object(RESTART, {}),
            "minItems": 1,
            "maxItems": MAX_RESTARTS,
        },
        "bug": _object(
            BUG,
            {
                "caught_by": {
                    "type": "array",
                    "items": {"enum": [*CLAIM_SPECS, *BUILTIN_CHECKS]},
                    "minItems": 1,
                    "uniqueItems": True,
                },
                "race": {"type": "array", "items": {"enum": [*CLAIM_SPECS, *BUILTIN_CHECKS]}},
            },
        ),
    }
    out = _object(SCENARIO, special, required=False)
    out["required"] = [k for k in SCENARIO.required if k not in ("send", "expect")]
    # A probe sends its own bytes; a line client needs both.
    out["if"] = {"not": {"required": ["probe"]}}
    out["then"] = {"required": ["send", "expect"]}
    return out


def _netem() -> Schema:
    # The units and ranges are checked by the reader; here, their shape.
    unit = {
        "delay": "^[0-9.]+ *(us|ms|s)$",
        "jitter": "^[0-9.]+ *(us|ms|s)$",
        "rate": "^[0-9.]+ *([kmgKMG]?(bit|bps))$",
        **{k: "^[0-9.]+ *%$" for k in ("loss", "duplicate", "reorder", "corrupt")},
    }
    return _object(NETEM, {k: {"type": "string", "pattern": p} for k, p in unit.items()})


def topology_schema() -> Schema:
    """The whole schema, as a JSON-ready mapping."""
    netem = _netem()
    per_iface = _named(_object(NODE_NETEM, {"ingress": netem, "egress": netem}))
    node = _object(
        NODE,
        {
            "interfaces": _named({"type": "string", "format": "ipv4"}),
            "ssh": _ssh(),
            "engine": {"type": "string", "pattern": f"^{ENGINE_NAME_RE.pattern}$"},
            "netem": per_iface,
        },
    )
    bpf = {"type": "string", "maxLength": MAX_FILTER_CHARS, "pattern": _FILTER_PATTERN}
    capture = _object(CAPTURE, {"filter": bpf})
    top = _object(
        TOP,
        {
            "networks": _named(_object(NETWORK, {"netem": netem}), MAX_NETWORKS),
            "nodes": _named(node, MAX_NODES),
            "programs": _named(_program()),
            "services": _named(_service()),
            "scenarios": {"type": "array", "items": _scenario()},
            "capture": capture,
        },
    )
    # An optional section left empty (``services:`` and nothing under it) is absent.
    for name, prop in top["properties"].items():
        if name not in TOP.required:
            prop["anyOf"] = [
                {"type": "null"},
                {k: v for k, v in prop.items() if k != "description"},
            ]
            for k in [k for k in prop if k not in ("anyOf", "description")]:
                del prop[k]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://socket-lab.invalid/topology.schema.json",
        "title": "socket-lab topology",
        "description": "A lab: networks, nodes on them, services, and scenarios.",
        **top,
    }
