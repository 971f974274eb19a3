"""Reading ``netem:`` mappings (a network's, a node interface's) into ``Netem`` values,
each problem located; and resolving them into one impairment per interface and direction."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from yaml.nodes import Node

from lab.spec.drafts import Doc
from lab.spec.keys import IMPAIR, NETEM, NODE_NETEM
from lab.spec.netem import (
    DIRECTIONS,
    Direction,
    Impairment,
    ImpairStep,
    Netem,
    netem_of,
    parse_percent,
    parse_rate,
    parse_time,
)
from lab.spec.yamlread import KeyPath, Reader, line_of

_PARSERS: dict[str, Callable[[str], tuple[float | int | None, str]]] = {
    "delay": parse_time,
    "jitter": parse_time,
    "loss": parse_percent,
    "duplicate": parse_percent,
    "reorder": parse_percent,
    "corrupt": parse_percent,
    "rate": parse_rate,
}


def read_netem(r: Reader, node: Node, path: KeyPath) -> Netem | None:
    """One netem mapping; None when any of its values had a problem (reported)."""
    spec = r.fields(node, path, line_of(node), NETEM)
    if spec is None:
        return None
    values: dict[str, float] = {}
    limit: int | None = None
    ok = True
    for key, e in spec.items():
        kpath = (*path, key)
        if key == "limit":
            read = r.value(NETEM["limit"], e.value, kpath)
            ok = ok and isinstance(read, int)
            limit = read if isinstance(read, int) else None
            continue
        text = r.text(e.value, kpath)
        if text is None:
            ok = False
            continue
        value, why = _PARSERS[key](text)
        if value is None:
            r.p.add(line_of(e.value), kpath, why)
            ok = False
            continue
        values[key] = value
    for needs in ("jitter", "reorder"):
        if needs in spec and "delay" not in spec:
            r.p.add(
                spec[needs].line,
                (*path, needs),
                f"'{needs}' needs 'delay' (netem {needs}s delayed packets)",
            )
            ok = False
    if not ok:
        return None
    return netem_of(values, limit)


def read_node_netem(
    r: Reader, node: Node, path: KeyPath, interfaces: Iterable[str]
) -> list[tuple[str, Direction, Netem]]:
    """A node's ``netem``: ``{NETWORK: {ingress: ..., egress: ...}}``, each NETWORK one of
    the node's own ``interfaces``."""
    out: list[tuple[str, Direction, Netem]] = []
    entries = r.entries(node, path, "a mapping of the node's networks to {ingress, egress}")
    own = list(interfaces)
    for e in entries or ():
        npath = (*path, e.key)
        if e.key not in own:
            known = ", ".join(own) or "none"
            r.p.add(e.line, npath, f"the node has no interface on '{e.key}'; its networks: {known}")
        spec = r.fields(e.value, npath, e.line, NODE_NETEM)
        for direction in DIRECTIONS:
            if spec is not None and direction in spec:
                netem = read_netem(r, spec[direction].value, (*npath, direction))
                if netem is not None and e.key in own:
                    out.append((e.key, direction, netem))
    return out


def resolve(
    network_netem: dict[str, Netem],
    node_interfaces: Iterable[tuple[str, str]],
    node_netem: Iterable[tuple[str, str, Direction, Netem]],
) -> tuple[Impairment, ...]:
    """One impairment per (node, network, direction): a network's netem is every attached
    node's ingress, unless the node gives its own for that interface."""
    chosen: dict[tuple[str, str, Direction], Netem] = {}
    for node, network in node_interfaces:
        if network in network_netem:
            chosen[(node, network, "ingress")] = network_netem[network]
    for node, network, direction, netem in node_netem:
        chosen[(node, network, direction)] = netem
    return tuple(Impairment(n, net, d, netem) for (n, net, d), netem in chosen.items())


def read_impair_steps(r: Reader, node: Node, path: KeyPath, doc: Doc) -> list[ImpairStep]:
    """A scenario's ``impair`` list; a step naming a node or network the file lacks, or a
    node not on that network, is reported at its line."""
    out: list[ImpairStep] = []
    for k, item in enumerate(r.items(node, path) or ()):
        ipath = (*path, k)
        spec = r.fields(item, ipath, line_of(item), IMPAIR)
        if spec is None or any(key not in spec for key in IMPAIR.required):
            continue
        name = r.name(spec["node"].value, (*ipath, "node"))
        network = r.name(spec["network"].value, (*ipath, "network"))
        direction: Direction = "ingress"
        if "direction" in spec:
            read = r.value(IMPAIR["direction"], spec["direction"].value, (*ipath, "direction"))
            direction = "egress" if read == "egress" else "ingress"
        start = (
            r.value(IMPAIR["start"], spec["start"].value, (*ipath, "start"))
            if "start" in spec
            else 0
        )
        duration = r.value(IMPAIR["duration"], spec["duration"].value, (*ipath, "duration"))
        netem = read_netem(r, spec["netem"].value, (*ipath, "netem"))
        if name is not None and name not in doc.nodes:
            r.p.add(line_of(spec["node"].value), (*ipath, "node"), f"unknown node '{name}'")
            name = None
        if name is not None and network is not None:
            own = [i.network for i in doc.nodes[name].ifaces]
            if network not in own:
                r.p.add(
                    line_of(spec["network"].value),
                    (*ipath, "network"),
                    f"node {name} has no interface on '{network}'; its networks: "
                    f"{', '.join(own) or 'none'}",
                )
                network = None
        if (
            name is not None
            and network is not None
            and isinstance(start, int | float)
            and isinstance(duration, int | float)
            and netem is not None
        ):
            out.append(ImpairStep(name, network, direction, float(start), float(duration), netem))
    return out
