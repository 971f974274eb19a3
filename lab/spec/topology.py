"""Topology files: read YAML, check everything, build ``lab.spec.model.Topology``.

Every problem in a file is reported at once, each as ``FILE:LINE: key.path: message``, in
file order. The YAML is composed (not constructed) with PyYAML's safe loader, so every value
keeps its line, duplicate keys are visible (the constructor would silently keep the last),
and no tag can ever turn into a Python object. The schema is documented in
``topologies/README.md``.

Nothing here does I/O beyond reading the one file it is given.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TypeVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lab.errors import TopologyError
from lab.spec.claims import CLAIM_SPECS as CLAIMS
from lab.spec.model import (
    PROBE_ERRORS,
    PROBES,
    RESTART_ERRORS,
    SERVER_PROGRAMS,
    SERVICE_OPTIONS,
    Capture,
    Interface,
    Network,
    OptionValue,
    Restart,
    Scenario,
    Service,
    SshTarget,
    Topology,
)
from lab.spec.model import Node as ModelNode

__all__ = [
    "DEFAULT_PORTS",
    "MAX_NODES",
    "find_overlaps",
    "is_valid_name",
    "load_topology",
    "load_topology_text",
    "subnet_problem",
    "unsafe_filter_chars",
    "validate_file",
]

# Port a service listens on when the file gives none, per program.
DEFAULT_PORTS: dict[str, int] = {
    "fork_server": 9999,
    "thread_server": 8000,
    "iterative_server": 9877,
    "dict_server": 8080,
    "udp_echo": 8080,
}

# Names become parts of namespace, container and interface names: keep them short and tame.
NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,23}")
NAME_RULE = "a name is 1-24 characters of a-z, 0-9 and '-', starting with a letter"

MAX_NODES = 250
MAX_NETWORKS = 250
MAX_FILE_BYTES = 1 << 20
MIN_PREFIX, MAX_PREFIX = 8, 30
PORT_RANGE = (1, 65535)
BACKLOG_RANGE = (1, 4096)
CONCURRENCY_RANGE = (1, 1000)
HOLD_RANGE = (0, 600)
START_AFTER_RANGE = (0, 60)
PAUSE_READING_RANGE = (0, 60)
REPEAT_RANGE = (1, 10000)
RCVBUF_RANGE = (256, 1 << 24)
CLOSE_DELAY_RANGE = (0, 60)
# Scenario keys that only the TCP line client knows (half_close is checked on its own).
_TCP_ONLY_KEYS = ("repeat", "rcvbuf", "pause_reading")
SNAPLEN_RANGE = (64, 262144)
MAX_ITEM_BYTES = 1024
MAX_FILTER_CHARS = 512

# Lab networks stay inside the private ranges so that no lab route can shadow a real one.
PRIVATE_RANGES = tuple(IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

# Characters a capture filter may use: enough for BPF (``tcp[13] & 2 != 0``,
# ``host 10.77.1.10 and port 9999``), nothing a shell or a quoting bug could make use of.
FILTER_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .:/()[]!<>=&|+*-"
)

_TOP_KEYS = ("name", "description", "networks", "nodes", "services", "scenarios", "capture")
_REQUIRED_TOP = ("networks", "nodes")
_NETWORK_KEYS = ("subnet",)
_NODE_KEYS = ("interfaces", "router", "gateway", "ssh")
_SSH_KEYS = ("host", "port", "user", "key", "agent", "jump", "python")
_JUMP_KEYS = ("host", "port", "user", "key", "agent")
# SSH values end up as arguments of a connection, never in a shell; still, keep them tame
# (no leading '-', no spaces or quotes) so that a typo is caught here and not at a prompt.
SSH_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
SSH_USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
SSH_PYTHON_RE = re.compile(r"[A-Za-z0-9_./+-]{1,255}")
_SERVICE_KEYS = ("node", "program", "port", "options")
_SCENARIO_KEYS = (
    "name", "service", "clients", "send", "expect", "concurrency", "hold", "half_close",
    "claims", "probe", "port", "expect_error", "restart",
    "start_after", "repeat", "rcvbuf", "pause_reading",
)  # fmt: skip
# Keys of a line-client scenario that a probe scenario does not take (it sends its own bytes).
_NOT_WITH_PROBE = (
    "send", "expect", "concurrency", "hold", "half_close", "repeat", "rcvbuf", "pause_reading",
)  # fmt: skip
_RESTART_KEYS = ("reuseaddr", "expect")
MAX_RESTARTS = 10
_CAPTURE_KEYS = ("enabled", "snaplen", "filter")

_YAML = "tag:yaml.org,2002:"
_ALIAS_TAG = "tag:socket-lab:alias"  # stands in for an alias, which is reported, not followed
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_CONSTRUCT = SafeConstructor()
# The tags the safe loader knows; any other explicit tag is refused, never interpreted.
_KNOWN_KINDS = frozenset(
    (
        "str",
        "int",
        "float",
        "bool",
        "null",
        "timestamp",
        "binary",
        "map",
        "seq",
        "set",
        "omap",
        "pairs",
    )
)

PathPart = str | int
_Num = TypeVar("_Num", int, float)
KeyPath = tuple[PathPart, ...]


# --- pure checks (exported for tests and for other tools) --------------------------------


def is_valid_name(text: str) -> bool:
    """True if ``text`` may name a topology, network, node, service or scenario."""
    return NAME_RE.fullmatch(text) is not None


def subnet_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable lab subnet, or None if it is one."""
    if ":" in text:
        return f"'{text}' is not IPv4: the lab uses IPv4 subnets only"
    if "/" not in text:
        return f"'{text}' has no prefix length; write it like 10.77.1.0/24"
    try:
        loose = IPv4Network(text, strict=False)
    except ValueError:
        return f"'{text}' is not an IPv4 subnet; write it like 10.77.1.0/24"
    if IPv4Address(text.split("/")[0]) != loose.network_address:
        return f"'{text}' has host bits set; the network is {loose}"
    if not MIN_PREFIX <= loose.prefixlen <= MAX_PREFIX:
        return f"prefix /{loose.prefixlen} is outside /{MIN_PREFIX}../{MAX_PREFIX}"
    if not any(loose.subnet_of(r) for r in PRIVATE_RANGES):
        return (
            f"{loose} is not a private range; use one inside 10.0.0.0/8, 172.16.0.0/12 or "
            "192.168.0.0/16 so that lab routes never shadow real ones"
        )
    return None


def overlaps(a: IPv4Network, b: IPv4Network) -> bool:
    """Two CIDR blocks overlap exactly when their address ranges intersect."""
    return int(a.network_address) <= int(b.broadcast_address) and int(b.network_address) <= int(
        a.broadcast_address
    )


def find_overlaps(subnets: Sequence[IPv4Network]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``: subnet ``j`` overlaps the earlier subnet ``i``, the first
    such ``i`` for each ``j``."""
    found = []
    for j, b in enumerate(subnets):
        for i in range(j):
            if overlaps(subnets[i], b):
                found.append((i, j))
                break
    return found


def unsafe_filter_chars(text: str) -> list[str]:
    """The distinct characters of a capture filter outside the safe set, in order."""
    return list(dict.fromkeys(c for c in text if c not in FILTER_CHARS))


# --- problem collection ------------------------------------------------------------------


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
class _Problems:
    filename: str
    items: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, line: int, path: KeyPath, message: str) -> None:
        text = f"{self.filename}:{line}: {render_path(path)}: {message}"
        self.items.append((line, len(self.items), text))

    def lines(self) -> list[str]:
        """In file order; problems on one line keep the order they were found in."""
        return [text for _, _, text in sorted(self.items)]


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _tag_kind(tag: str) -> str:
    return tag[len(_YAML) :] if tag.startswith(_YAML) else tag


def _describe(node: Node) -> str:
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
    return kinds.get(_tag_kind(node.tag), f"a value tagged {_short_tag(node.tag)}")


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag


def _standard(tag: str) -> bool:
    """A tag of YAML's own that the safe loader would read as plain data."""
    return tag.startswith(_YAML) and _tag_kind(tag) in _KNOWN_KINDS


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _YAML + "null"


def _is_empty(node: Node) -> bool:
    """An empty mapping or list (whose entries would otherwise be read as fine)."""
    return isinstance(node, MappingNode | SequenceNode) and not node.value


# --- YAML composition --------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Composes node trees; an alias becomes a placeholder scalar instead of a shared node,
    so a walk stays linear (no alias bombs) and the alias itself can be reported."""

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()  # type: ignore[no-untyped-call]
            return ScalarNode(_ALIAS_TAG, "*" + str(event.anchor), event.start_mark, event.end_mark)
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def _compose(text: str, problems: _Problems) -> Node | None:
    loader = _Loader(text)
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
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        problems.add(line, (), f"YAML syntax error: {exc.reason} (character {exc.character!r})")
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML's remaining errors are marked
        problems.add(1, (), f"YAML syntax error: {exc}")
    except RecursionError:
        problems.add(1, (), "YAML syntax error: the document is nested too deeply")
    finally:
        loader.dispose()
    return None


# --- typed access to composed nodes ------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    key: str
    line: int  # of the key
    value: Node


class _Reader:
    """Typed getters over composed nodes; each reports what is wrong and returns None."""

    def __init__(self, problems: _Problems) -> None:
        self.p = problems

    def _refused(self, node: Node, path: KeyPath) -> bool:
        """Report an alias, or an explicit tag YAML does not define (``!!python/...``)."""
        if node.tag == _ALIAS_TAG:
            self.p.add(
                _line(node), path, f"aliases ({node.value}) are not supported; write the value out"
            )
            return True
        if not _standard(node.tag):
            self.p.add(_line(node), path, f"unsupported tag {_short_tag(node.tag)}; remove it")
            return True
        return False

    def _scalar(self, node: Node, path: KeyPath, want: str) -> ScalarNode | None:
        if self._refused(node, path):
            return None
        if not isinstance(node, ScalarNode):
            self.p.add(_line(node), path, f"must be {want}, got {_describe(node)}")
            return None
        return node

    def entries(self, node: Node, path: KeyPath, want: str = "a mapping") -> list[_Entry] | None:
        """A mapping's entries in file order; duplicate and non-name keys reported and dropped."""
        if self._refused(node, path):
            return None
        if not isinstance(node, MappingNode):
            self.p.add(_line(node), path, f"must be {want}, got {_describe(node)}")
            return None
        seen: dict[str, int] = {}
        out = []
        for knode, vnode in node.value:
            if knode.tag == _YAML + "merge":
                self.p.add(
                    _line(knode), path, "merge keys (<<) are not supported; write the keys out"
                )
                continue
            if not isinstance(knode, ScalarNode) or not _standard(knode.tag):
                self.p.add(
                    _line(knode), path, f"a key must be a plain name, got {_describe(knode)}"
                )
                continue
            key, line = str(knode.value), _line(knode)
            if key in seen:
                self.p.add(
                    line,
                    (*path, key),
                    f"duplicate key '{key}' (first at line {seen[key]}); YAML would silently "
                    "keep only the last one",
                )
                continue
            seen[key] = line
            out.append(_Entry(key, line, vnode))
        return out

    def fields(
        self,
        node: Node,
        path: KeyPath,
        anchor: int,
        known: Sequence[str],
        required: Sequence[str],
    ) -> dict[str, _Entry] | None:
        """A mapping with a fixed set of keys: unknown keys and missing required keys are
        reported (missing ones at ``anchor``, the line that introduced the mapping)."""
        entries = self.entries(node, path)
        if entries is None:
            return None
        out: dict[str, _Entry] = {}
        for e in entries:
            if e.key in known:
                out[e.key] = e
            else:
                hint = _suggest(e.key, known) or f" (known keys: {', '.join(known)})"
                self.p.add(e.line, (*path, e.key), f"unknown key '{e.key}'{hint}")
        for key in required:
            if key not in out:
                self.p.add(anchor, path, f"missing required key '{key}'")
        return out

    def items(self, node: Node, path: KeyPath) -> list[Node] | None:
        if self._refused(node, path):
            return None
        if not isinstance(node, SequenceNode):
            self.p.add(_line(node), path, f"must be a list, got {_describe(node)}")
            return None
        return list(node.value)

    def text(self, node: Node, path: KeyPath) -> str | None:
        """Any scalar but null, taken verbatim: ``no`` stays "no", ``1.0`` stays "1.0"."""
        scalar = self._scalar(node, path, "text")
        if scalar is None:
            return None
        if _tag_kind(scalar.tag) == "null":
            self.p.add(_line(node), path, "must be text, got nothing (null)")
            return None
        return str(scalar.value)

    def name(self, node: Node, path: KeyPath) -> str | None:
        value = self.text(node, path)
        if value is not None and not is_valid_name(value):
            self.p.add(_line(node), path, f"bad name {value!r}: {NAME_RULE}")
            return None
        return value

    def integer(self, node: Node, path: KeyPath, bounds: tuple[int, int]) -> int | None:
        scalar = self._scalar(node, path, "an integer")
        if scalar is None:
            return None
        kind = _tag_kind(scalar.tag)
        if kind != "int":
            hint = " (remove the quotes)" if kind == "str" and _is_int_text(scalar.value) else ""
            self.p.add(_line(node), path, f"must be an integer, got {_describe(scalar)}{hint}")
            return None
        value = int(_CONSTRUCT.construct_yaml_int(scalar))
        return self._in_range(value, node, path, bounds)

    def number(self, node: Node, path: KeyPath, bounds: tuple[int, int]) -> float | None:
        scalar = self._scalar(node, path, "a number")
        if scalar is None:
            return None
        kind = _tag_kind(scalar.tag)
        if kind == "int":
            value = float(_CONSTRUCT.construct_yaml_int(scalar))
        elif kind == "float":
            value = float(_CONSTRUCT.construct_yaml_float(scalar))
        else:
            self.p.add(_line(node), path, f"must be a number, got {_describe(scalar)}")
            return None
        return self._in_range(value, node, path, bounds)

    def _in_range(
        self, value: _Num, node: Node, path: KeyPath, bounds: tuple[int, int]
    ) -> _Num | None:
        lo, hi = bounds
        if not lo <= value <= hi:  # also catches .nan
            shown = _scalar_text(node)
            self.p.add(_line(node), path, f"{shown} is out of range {lo}..{hi}")
            return None
        return value

    def boolean(self, node: Node, path: KeyPath) -> bool | None:
        scalar = self._scalar(node, path, "true or false")
        if scalar is None:
            return None
        if _tag_kind(scalar.tag) != "bool":
            self.p.add(_line(node), path, f"must be true or false, got {_describe(scalar)}")
            return None
        return bool(_CONSTRUCT.construct_yaml_bool(scalar))

    def address(self, node: Node, path: KeyPath) -> IPv4Address | None:
        value = self.text(node, path)
        if value is None:
            return None
        try:
            return IPv4Address(value)
        except ValueError:
            self.p.add(_line(node), path, f"{value!r} is not an IPv4 address")
            return None


def _scalar_text(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else _describe(node)


def _is_int_text(text: str) -> bool:
    return re.fullmatch(r"[+-]?[0-9]+", text.strip()) is not None


# --- the file's parts, as read (every field may be missing when it had a problem) ---------


@dataclass
class _Net:
    name: str
    line: int
    subnet: IPv4Network | None = None


@dataclass
class _Iface:
    network: str
    line: int
    address: IPv4Address | None


@dataclass
class _Node:
    name: str
    line: int
    ifaces: list[_Iface] = field(default_factory=list)
    router: bool = False
    gateway: IPv4Address | None = None
    gateway_line: int = 0
    gateway_router: str | None = None  # set once the gateway is known to be a router's address
    ssh: SshTarget | None = None
    has_ssh: bool = False  # the file gave an ssh key (even a bad one)


@dataclass
class _Service:
    name: str
    line: int
    node: str | None = None
    node_line: int = 0
    program: str | None = None
    port: int | None = None
    port_line: int = 0
    options: list[tuple[str, OptionValue]] = field(default_factory=list)

    def protocol_is(self, protocol: str) -> bool:
        return self.program is not None and SERVER_PROGRAMS[self.program] == protocol


@dataclass
class _Scenario:
    index: int
    line: int
    name: str | None = None
    service: str | None = None
    service_line: int = 0
    clients: list[tuple[str, int]] = field(default_factory=list)
    send: list[str] | None = None
    expect: list[str] | None = None
    concurrency: int = 1
    hold: float = 0.0
    half_close: bool = False
    half_close_line: int = 0
    claims: list[tuple[str, int]] = field(default_factory=list)
    probe: str | None = None
    probe_line: int = 0
    port: int | None = None
    port_line: int = 0
    expect_error: str | None = None
    restart: list[Restart] = field(default_factory=list)
    restart_line: int = 0
    start_after: float = 0.0
    repeat: int = 1
    rcvbuf: int = 0
    pause_reading: float = 0.0
    tcp_only_lines: dict[str, int] = field(default_factory=dict)  # key -> line, if set


@dataclass
class _Doc:
    name: str | None = None
    description: str = ""
    networks: dict[str, _Net] = field(default_factory=dict)
    nodes: dict[str, _Node] = field(default_factory=dict)
    services: dict[str, _Service] = field(default_factory=dict)
    scenarios: list[_Scenario] = field(default_factory=list)
    capture: Capture = field(default_factory=Capture)


# --- reading each section ----------------------------------------------------------------


def _read_networks(r: _Reader, e: _Entry, doc: _Doc) -> None:
    entries = r.entries(e.value, ("networks",), "a mapping of network names to {subnet: ...}")
    if entries is None:
        return
    if _is_empty(e.value):
        r.p.add(e.line, ("networks",), "needs at least one network")
    if len(entries) > MAX_NETWORKS:
        r.p.add(
            e.line, ("networks",), f"{len(entries)} networks; at most {MAX_NETWORKS} are allowed"
        )
    for ne in entries:
        path: KeyPath = ("networks", ne.key)
        net = _Net(ne.key, ne.line)
        doc.networks[ne.key] = net
        if not is_valid_name(ne.key):
            r.p.add(ne.line, path, f"bad network name {ne.key!r}: {NAME_RULE}")
        spec = r.fields(ne.value, path, ne.line, _NETWORK_KEYS, ("subnet",))
        if spec and "subnet" in spec:
            s = spec["subnet"]
            text = r.text(s.value, (*path, "subnet"))
            if text is not None:
                problem = subnet_problem(text)
                if problem:
                    r.p.add(_line(s.value), (*path, "subnet"), problem)
                else:
                    net.subnet = IPv4Network(text)
    _check_overlaps(r.p, doc, len(entries) <= MAX_NETWORKS)


def _check_overlaps(p: _Problems, doc: _Doc, feasible: bool) -> None:
    if not feasible:  # pairwise comparison of a huge list is not worth the time
        return
    nets = [n for n in doc.networks.values() if n.subnet is not None]
    subnets = [n.subnet for n in nets if n.subnet is not None]
    for i, j in find_overlaps(subnets):
        a, b = nets[i], nets[j]
        p.add(
            b.line,
            ("networks", b.name, "subnet"),
            f"subnet {b.subnet} overlaps network '{a.name}' ({a.subnet}, line {a.line})",
        )


def _read_nodes(r: _Reader, e: _Entry, doc: _Doc) -> None:
    entries = r.entries(e.value, ("nodes",), "a mapping of node names to {interfaces: ...}")
    if entries is None:
        return
    if _is_empty(e.value):
        r.p.add(e.line, ("nodes",), "needs at least one node")
    if len(entries) > MAX_NODES:
        r.p.add(e.line, ("nodes",), f"{len(entries)} nodes; at most {MAX_NODES} are allowed")
    for ne in entries:
        node = _Node(ne.key, ne.line)
        doc.nodes[ne.key] = node
        path: KeyPath = ("nodes", ne.key)
        if not is_valid_name(ne.key):
            r.p.add(ne.line, path, f"bad node name {ne.key!r}: {NAME_RULE}")
        spec = r.fields(ne.value, path, ne.line, _NODE_KEYS, ("interfaces",))
        if spec is None:
            continue
        if "interfaces" in spec:
            _read_interfaces(r, spec["interfaces"], path, node, doc)
        if "router" in spec:
            node.router = bool(r.boolean(spec["router"].value, (*path, "router")))
        if "gateway" in spec:
            g = spec["gateway"]
            node.gateway = r.address(g.value, (*path, "gateway"))
            node.gateway_line = _line(g.value)
        if "ssh" in spec:
            node.has_ssh = True
            node.ssh = _read_ssh(r, spec["ssh"], (*path, "ssh"), _SSH_KEYS)


def _read_ssh(r: _Reader, e: _Entry, path: KeyPath, known: Sequence[str]) -> SshTarget | None:
    """An SSH target: ``{host, port, user, key, agent, jump, python}``; a jump host takes
    the same keys but no jump or python of its own."""
    spec = r.fields(e.value, path, e.line, known, ("host",))
    if spec is None or "host" not in spec:
        return None
    ok = True

    def text(key: str, pattern: re.Pattern[str], rule: str) -> str | None:
        nonlocal ok
        value = r.text(spec[key].value, (*path, key))
        if value is not None and not pattern.fullmatch(value):
            r.p.add(_line(spec[key].value), (*path, key), f"bad {key} {value!r}: {rule}")
            value = None
        ok = ok and value is not None
        return value

    host = text("host", SSH_HOST_RE, "a host name or address (letters, digits, '.', ':', '-')")
    target = SshTarget(host or "")
    if "port" in spec:
        port = r.integer(spec["port"].value, (*path, "port"), PORT_RANGE)
        ok = ok and port is not None
        target = replace(target, port=port or 22)
    if "user" in spec:
        user = text("user", SSH_USER_RE, "a login name (a-z, 0-9, '_', '.', '-')")
        target = replace(target, user=user or "root")
    if "key" in spec:
        key = r.text(spec["key"].value, (*path, "key"))
        if key == "":
            r.p.add(_line(spec["key"].value), (*path, "key"), "an empty key file name")
            key = None
        ok = ok and key is not None
        target = replace(target, key=key)
    if "agent" in spec:
        agent = r.boolean(spec["agent"].value, (*path, "agent"))
        ok = ok and agent is not None
        target = replace(target, agent=bool(agent))
    if "python" in spec:
        python = text("python", SSH_PYTHON_RE, "an interpreter path (no spaces or quotes)")
        target = replace(target, python=python or "python3")
    if "jump" in spec:
        jump = _read_ssh(r, spec["jump"], (*path, "jump"), _JUMP_KEYS)
        ok = ok and jump is not None
        target = replace(target, jump=jump)
    return target if ok else None


def _check_ssh(p: _Problems, doc: _Doc) -> None:
    """Either every node is an existing host reached over SSH, or none is."""
    with_ssh = [n for n in doc.nodes.values() if n.has_ssh]
    if not with_ssh:
        return
    first = with_ssh[0]
    for node in doc.nodes.values():
        if not node.has_ssh:
            p.add(
                node.line,
                ("nodes", node.name),
                f"node '{node.name}' has no ssh target, but '{first.name}' (line {first.line}) "
                "has one: when any node is an SSH host, every node must be",
            )


def _read_interfaces(r: _Reader, e: _Entry, path: KeyPath, node: _Node, doc: _Doc) -> None:
    ipath = (*path, "interfaces")
    entries = r.entries(e.value, ipath, "a mapping of network names to addresses")
    if entries is None:
        return
    if _is_empty(e.value):
        r.p.add(e.line, ipath, "a node needs at least one interface")
    for ie in entries:
        addr = r.address(ie.value, (*ipath, ie.key))
        node.ifaces.append(_Iface(ie.key, ie.line, addr))
        if ie.key not in doc.networks:
            known = ", ".join(doc.networks) or "none"
            hint = _suggest(ie.key, doc.networks)
            r.p.add(
                ie.line, (*ipath, ie.key), f"unknown network '{ie.key}'{hint}; networks: {known}"
            )


def _read_services(r: _Reader, e: _Entry, doc: _Doc) -> None:
    entries = r.entries(e.value, ("services",), "a mapping of service names to {node, program}")
    for se in entries or ():
        svc = _Service(se.key, se.line)
        doc.services[se.key] = svc
        path: KeyPath = ("services", se.key)
        if not is_valid_name(se.key):
            r.p.add(se.line, path, f"bad service name {se.key!r}: {NAME_RULE}")
        spec = r.fields(se.value, path, se.line, _SERVICE_KEYS, ("node", "program"))
        if spec is None:
            continue
        if "node" in spec:
            svc.node = r.text(spec["node"].value, (*path, "node"))
            svc.node_line = _line(spec["node"].value)
        if "program" in spec:
            svc.program = _read_program(r, spec["program"].value, (*path, "program"))
        if "port" in spec:
            svc.port = r.integer(spec["port"].value, (*path, "port"), PORT_RANGE)
            svc.port_line = _line(spec["port"].value)
        elif svc.program is not None:
            svc.port, svc.port_line = DEFAULT_PORTS[svc.program], se.line
        if "options" in spec:
            _read_options(r, spec["options"].value, (*path, "options"), svc)


def _read_program(r: _Reader, node: Node, path: KeyPath) -> str | None:
    program = r.text(node, path)
    if program is None or program in SERVER_PROGRAMS:
        return program
    known = ", ".join(sorted(SERVER_PROGRAMS))
    r.p.add(
        _line(node),
        path,
        f"unknown program '{program}'{_suggest(program, SERVER_PROGRAMS)}; programs: {known}",
    )
    return None


def _read_options(r: _Reader, node: Node, path: KeyPath, svc: _Service) -> None:
    entries = r.entries(node, path)
    if entries is None or svc.program is None:
        return  # an unknown program's options cannot be checked
    allowed = SERVICE_OPTIONS[svc.program]
    for oe in entries:
        opath = (*path, oe.key)
        if oe.key not in allowed:
            if not allowed:
                r.p.add(oe.line, opath, f"{svc.program} takes no options")
            else:
                hint = _suggest(oe.key, allowed)
                known = ", ".join(sorted(allowed))
                r.p.add(
                    oe.line,
                    opath,
                    f"unknown option '{oe.key}' for {svc.program}{hint}; options: {known}",
                )
            continue
        kind, _ = allowed[oe.key]
        value: OptionValue | None
        if kind is bool:
            value = r.boolean(oe.value, opath)
        elif kind is float:
            value = r.number(oe.value, opath, CLOSE_DELAY_RANGE)
        else:
            bounds = BACKLOG_RANGE if oe.key == "backlog" else (0, 2**31 - 1)
            value = r.integer(oe.value, opath, bounds)
        if value is not None:
            svc.options.append((oe.key, value))


def _read_scenarios(r: _Reader, e: _Entry, doc: _Doc) -> None:
    items = r.items(e.value, ("scenarios",))
    seen: dict[str, int] = {}
    for index, item in enumerate(items or ()):
        path: KeyPath = ("scenarios", index)
        sc = _Scenario(index, _line(item))
        doc.scenarios.append(sc)
        required: tuple[str, ...] = ("name", "service", "clients")
        if not _has_key(item, "probe"):
            required += ("send", "expect")  # a probe sends its own bytes
        spec = r.fields(item, path, _line(item), _SCENARIO_KEYS, required)
        if spec is None:
            continue
        if "name" in spec:
            sc.name = r.name(spec["name"].value, (*path, "name"))
            if sc.name is not None and sc.name in seen:
                r.p.add(
                    _line(spec["name"].value),
                    (*path, "name"),
                    f"duplicate scenario name '{sc.name}' (first at line {seen[sc.name]})",
                )
            elif sc.name is not None:
                seen[sc.name] = _line(spec["name"].value)
        if "service" in spec:
            sc.service = r.text(spec["service"].value, (*path, "service"))
            sc.service_line = _line(spec["service"].value)
        if "clients" in spec:
            sc.clients = _read_clients(r, spec["clients"], (*path, "clients"))
        _read_exchange(r, spec, path, sc)
        _read_scenario_knobs(r, spec, path, sc)
        _read_error_keys(r, spec, path, sc)


def _has_key(node: Node, key: str) -> bool:
    return isinstance(node, MappingNode) and any(
        isinstance(k, ScalarNode) and k.value == key for k, _ in node.value
    )


def _read_choice(
    r: _Reader, node: Node, path: KeyPath, what: str, choices: Sequence[str]
) -> str | None:
    value = r.text(node, path)
    if value is None or value in choices:
        return value
    hint = _suggest(value, choices)
    r.p.add(_line(node), path, f"unknown {what} '{value}'{hint}; {what}s: {', '.join(choices)}")
    return None


def _read_error_keys(r: _Reader, spec: dict[str, _Entry], path: KeyPath, sc: _Scenario) -> None:
    """``probe``, ``port``, ``expect_error`` and ``restart``: the error experiments' keys."""
    if "probe" in spec:
        sc.probe = _read_choice(r, spec["probe"].value, (*path, "probe"), "probe", PROBES)
        sc.probe_line = spec["probe"].line
        for key in _NOT_WITH_PROBE:
            if key in spec:
                r.p.add(spec[key].line, (*path, key), f"'{key}' does not apply to a probe")
    if "port" in spec:
        e = spec["port"]
        sc.port, sc.port_line = r.integer(e.value, (*path, "port"), PORT_RANGE), e.line
        if "probe" not in spec or sc.probe not in (None, "refused"):
            r.p.add(e.line, (*path, "port"), "'port' applies to the refused probe only")
    elif sc.probe == "refused":
        r.p.add(spec["probe"].line, path, "the refused probe needs a 'port' nothing listens on")
    if "expect_error" in spec:
        e = spec["expect_error"]
        sc.expect_error = _read_choice(r, e.value, (*path, "expect_error"), "error", PROBE_ERRORS)
        if "probe" not in spec:
            r.p.add(e.line, (*path, "expect_error"), "'expect_error' applies to probes only")
    if "restart" in spec:
        sc.restart_line = spec["restart"].line
        sc.restart = _read_restarts(r, spec["restart"], (*path, "restart"))


def _read_restarts(r: _Reader, e: _Entry, path: KeyPath) -> list[Restart]:
    items = r.items(e.value, path)
    if items is None:
        return []
    if not items or len(items) > MAX_RESTARTS:
        r.p.add(e.line, path, f"needs 1 to {MAX_RESTARTS} restarts, got {len(items)}")
    out = []
    for j, item in enumerate(items):
        spec = r.fields(item, (*path, j), _line(item), _RESTART_KEYS, ("reuseaddr",))
        if spec is None or "reuseaddr" not in spec:
            continue
        reuse = r.boolean(spec["reuseaddr"].value, (*path, j, "reuseaddr"))
        expect = None
        if "expect" in spec:
            expect_path = (*path, j, "expect")
            expect = _read_choice(
                r, spec["expect"].value, expect_path, "restart error", RESTART_ERRORS
            )
            if expect is None:
                continue
        if reuse is not None:
            out.append(Restart(reuseaddr=reuse, expect=expect))
    return out


def _read_clients(r: _Reader, e: _Entry, path: KeyPath) -> list[tuple[str, int]]:
    items = r.items(e.value, path)
    if items is None:
        return []
    if not items:
        r.p.add(e.line, path, "needs at least one client node")
    out: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for j, item in enumerate(items):
        name = r.text(item, (*path, j))
        if name is None:
            continue
        if name in seen:
            r.p.add(
                _line(item),
                (*path, j),
                f"node '{name}' is listed twice (first at line {seen[name]}); use concurrency "
                "for more connections",
            )
            continue
        seen[name] = _line(item)
        out.append((name, _line(item)))
    return out


def _read_exchange(r: _Reader, spec: dict[str, _Entry], path: KeyPath, sc: _Scenario) -> None:
    """``send`` and ``expect``: one line (TCP) or datagram (UDP) each, one reply per item."""
    for key in ("send", "expect"):
        if key not in spec:
            continue
        e = spec[key]
        items = r.items(e.value, (*path, key))
        if items is None:
            continue
        if not items:
            r.p.add(e.line, (*path, key), f"'{key}' needs at least one item")
        texts = [_read_item(r, item, (*path, key, j)) for j, item in enumerate(items)]
        good = [t for t in texts if t is not None]
        setattr(sc, key, good if len(good) == len(texts) else None)
    send, expect = sc.send, sc.expect
    if send and expect is not None and len(expect) != len(send):
        r.p.add(
            spec["expect"].line,
            (*path, "expect"),
            f"expect has {len(expect)} item(s) but send has {len(send)}; give one expected "
            "reply per item sent",
        )


def _read_item(r: _Reader, node: Node, path: KeyPath) -> str | None:
    text = r.text(node, path)
    if text is None:
        return None
    if text == "":
        r.p.add(_line(node), path, "an item must not be empty")
        return None
    if any(c in text for c in "\r\n\0"):
        r.p.add(_line(node), path, "an item is one line: no line breaks or NUL characters")
        return None
    size = len(text.encode())
    if size > MAX_ITEM_BYTES:
        r.p.add(_line(node), path, f"an item is {size} bytes; at most {MAX_ITEM_BYTES} are allowed")
        return None
    return text


def _read_scenario_knobs(r: _Reader, spec: dict[str, _Entry], path: KeyPath, sc: _Scenario) -> None:
    if "concurrency" in spec:
        value = r.integer(spec["concurrency"].value, (*path, "concurrency"), CONCURRENCY_RANGE)
        sc.concurrency = value if value is not None else 1
    if "hold" in spec:
        hold = r.number(spec["hold"].value, (*path, "hold"), HOLD_RANGE)
        sc.hold = hold if hold is not None else 0.0
    if "half_close" in spec:
        sc.half_close = bool(r.boolean(spec["half_close"].value, (*path, "half_close")))
        sc.half_close_line = _line(spec["half_close"].value)
    if "claims" in spec:
        sc.claims = _read_claims(r, spec["claims"], (*path, "claims"))
    _read_client_knobs(r, spec, path, sc)


def _read_client_knobs(r: _Reader, spec: dict[str, _Entry], path: KeyPath, sc: _Scenario) -> None:
    """When the clients start, how much they send, and how they read it back."""
    if "start_after" in spec:
        after = r.number(spec["start_after"].value, (*path, "start_after"), START_AFTER_RANGE)
        sc.start_after = after if after is not None else 0.0
    if "repeat" in spec:
        repeat = r.integer(spec["repeat"].value, (*path, "repeat"), REPEAT_RANGE)
        sc.repeat = repeat if repeat is not None else 1
    if "rcvbuf" in spec:
        rcvbuf = r.integer(spec["rcvbuf"].value, (*path, "rcvbuf"), RCVBUF_RANGE)
        sc.rcvbuf = rcvbuf if rcvbuf is not None else 0
    if "pause_reading" in spec:
        pause = r.number(spec["pause_reading"].value, (*path, "pause_reading"), PAUSE_READING_RANGE)
        sc.pause_reading = pause if pause is not None else 0.0
    for key in _TCP_ONLY_KEYS:
        if key in spec:
            sc.tcp_only_lines[key] = _line(spec[key].value)


def _read_claims(r: _Reader, e: _Entry, path: KeyPath) -> list[tuple[str, int]]:
    """Names of ``lab.spec.claims.CLAIM_SPECS``, each once; an unknown name gets the closest."""
    out: list[tuple[str, int]] = []
    for j, item in enumerate(r.items(e.value, path) or ()):
        name = r.text(item, (*path, j))
        if name is None:
            continue
        if name not in CLAIMS:
            hint = _suggest(name, CLAIMS) or f" (known claims: {', '.join(CLAIMS)})"
            r.p.add(_line(item), (*path, j), f"unknown claim '{name}'{hint}")
        elif name in (c for c, _ in out):
            r.p.add(_line(item), (*path, j), f"claim '{name}' is listed twice")
        else:
            out.append((name, _line(item)))
    return out


def _read_capture(r: _Reader, e: _Entry) -> Capture:
    spec = r.fields(e.value, ("capture",), e.line, _CAPTURE_KEYS, ())
    defaults = Capture()
    if spec is None:
        return defaults
    enabled, snaplen, bpf = defaults.enabled, defaults.snaplen, defaults.filter
    if "enabled" in spec:
        enabled = bool(r.boolean(spec["enabled"].value, ("capture", "enabled")))
    if "snaplen" in spec:
        snaplen = r.integer(spec["snaplen"].value, ("capture", "snaplen"), SNAPLEN_RANGE) or snaplen
    if "filter" in spec:
        bpf = _read_filter(r, spec["filter"].value) or ""
    return Capture(enabled=enabled, snaplen=snaplen, filter=bpf)


def _read_filter(r: _Reader, node: Node) -> str | None:
    text = r.text(node, ("capture", "filter"))
    if text is None:
        return None
    bad = unsafe_filter_chars(text)
    if bad:
        shown = " ".join(repr(c) for c in bad)
        r.p.add(
            _line(node),
            ("capture", "filter"),
            f"filter has characters outside the safe set: {shown} (allowed: letters, digits, "
            "space and . : / ( ) [ ] ! < > = & | + * -)",
        )
        return None
    if len(text) > MAX_FILTER_CHARS:
        r.p.add(
            _line(node),
            ("capture", "filter"),
            f"filter is longer than {MAX_FILTER_CHARS} characters",
        )
        return None
    return text


# --- checks across sections --------------------------------------------------------------


def _check_addresses(p: _Problems, doc: _Doc) -> dict[IPv4Address, tuple[str, str]]:
    """Each interface address: in its subnet, not the network or broadcast address, used once.
    Returns the owner (node, network) of each good address."""
    owners: dict[IPv4Address, tuple[str, str]] = {}
    lines: dict[IPv4Address, int] = {}
    for node in doc.nodes.values():
        for iface in node.ifaces:
            net = doc.networks.get(iface.network)
            if iface.address is None or net is None or net.subnet is None:
                continue
            path: KeyPath = ("nodes", node.name, "interfaces", iface.network)
            problem = _address_problem(iface.address, net)
            if problem:
                p.add(iface.line, path, problem)
            elif iface.address in owners:
                who, where = owners[iface.address]
                p.add(
                    iface.line,
                    path,
                    f"address {iface.address} is already used by node '{who}' on '{where}' "
                    f"(line {lines[iface.address]})",
                )
            else:
                owners[iface.address] = (node.name, iface.network)
                lines[iface.address] = iface.line
    return owners


def _address_problem(addr: IPv4Address, net: _Net) -> str | None:
    subnet = net.subnet
    assert subnet is not None
    if addr not in subnet:
        return f"{addr} is not in network '{net.name}' ({subnet})"
    if addr == subnet.network_address:
        return f"{addr} is the network address of {subnet}; use a host address"
    if addr == subnet.broadcast_address:
        return f"{addr} is the broadcast address of {subnet}; use a host address"
    return None


def _check_gateways(p: _Problems, doc: _Doc, owners: dict[IPv4Address, tuple[str, str]]) -> None:
    for node in doc.nodes.values():
        gw = node.gateway
        if gw is None:
            continue
        problem = _gateway_problem(node, gw, doc, owners)
        if problem:
            p.add(node.gateway_line, ("nodes", node.name, "gateway"), problem)
        else:
            node.gateway_router = owners[gw][0]


def _gateway_problem(
    node: _Node, gw: IPv4Address, doc: _Doc, owners: dict[IPv4Address, tuple[str, str]]
) -> str | None:
    if node.router:
        return "a router takes no gateway: it forwards only between its own networks"
    attached = [doc.networks[i.network] for i in node.ifaces if i.network in doc.networks]
    subnets = [n for n in attached if n.subnet is not None]
    if len(subnets) < len(node.ifaces):
        return None  # an interface is already reported; the gateway cannot be judged
    if not any(gw in n.subnet for n in subnets if n.subnet is not None):
        where = ", ".join(f"'{n.name}' {n.subnet}" for n in subnets)
        return f"gateway {gw} is not on a network this node is attached to ({where})"
    if any(i.address == gw for i in node.ifaces):
        return f"gateway {gw} is this node's own address"
    if gw not in owners:
        return f"no node has address {gw}; the gateway must be the address of a router node"
    owner = owners[gw][0]
    if not doc.nodes[owner].router:
        return f"gateway {gw} is node '{owner}', which is not a router (set router: true on it)"
    return None


def _check_services(p: _Problems, doc: _Doc) -> None:
    taken: dict[tuple[str, str, int], tuple[str, int]] = {}
    for svc in doc.services.values():
        path: KeyPath = ("services", svc.name)
        if svc.node is not None and svc.node not in doc.nodes:
            hint = _suggest(svc.node, doc.nodes)
            p.add(svc.node_line, (*path, "node"), f"unknown node '{svc.node}'{hint}")
            continue
        if svc.node is None or svc.program is None or svc.port is None:
            continue
        proto = SERVER_PROGRAMS[svc.program]
        slot = (svc.node, proto, svc.port)
        if slot in taken:
            other, line = taken[slot]
            p.add(
                svc.port_line,
                (*path, "port"),
                f"{proto} port {svc.port} on node '{svc.node}' is already used by service "
                f"'{other}' (line {line})",
            )
        else:
            taken[slot] = (svc.name, svc.line)


def _check_scenarios(p: _Problems, doc: _Doc) -> None:
    for sc in doc.scenarios:
        path: KeyPath = ("scenarios", sc.index)
        svc = doc.services.get(sc.service) if sc.service is not None else None
        if sc.service is not None and svc is None:
            hint = _suggest(sc.service, doc.services)
            p.add(sc.service_line, (*path, "service"), f"unknown service '{sc.service}'{hint}")
        udp = svc is not None and svc.program is not None and svc.protocol_is("udp")
        if svc is not None and sc.half_close and udp:
            p.add(
                sc.half_close_line,
                (*path, "half_close"),
                f"half_close applies to TCP only; service '{svc.name}' is UDP",
            )
        for key, line in sc.tcp_only_lines.items():
            if svc is not None and udp:
                p.add(line, (*path, key), f"{key} applies to TCP only; service '{svc.name}' is UDP")
        for j, (claim, line) in enumerate(sc.claims):
            wants = CLAIMS[claim].protocol
            if svc is None or svc.program is None or wants == "any" or svc.protocol_is(wants):
                continue
            p.add(
                line,
                (*path, "claims", j),
                f"claim '{claim}' is about {wants.upper()}; service '{svc.name}' is not",
            )
        for j, (client, line) in enumerate(sc.clients):
            problem = _client_problem(client, svc, doc)
            if problem:
                p.add(line, (*path, "clients", j), problem)
        if svc is not None:
            _check_error_keys(p, doc, sc, svc)


def _check_error_keys(p: _Problems, doc: _Doc, sc: _Scenario, svc: _Service) -> None:
    """A probe and a restart need a TCP service; the refused probe's port must be closed."""
    path: KeyPath = ("scenarios", sc.index)
    if svc.program is None:
        return  # already reported
    tcp = svc.protocol_is("tcp")
    if sc.probe is not None and not tcp:
        p.add(sc.probe_line, (*path, "probe"), f"probes need a TCP service; '{svc.name}' is UDP")
    if sc.restart and not tcp:
        p.add(
            sc.restart_line,
            (*path, "restart"),
            f"a restart sets SO_REUSEADDR, a TCP server option; '{svc.name}' is UDP",
        )
    if sc.port is None or svc.node is None:
        return
    for other in doc.services.values():
        if other.node == svc.node and other.port == sc.port and other.protocol_is("tcp"):
            p.add(
                sc.port_line,
                (*path, "port"),
                f"service '{other.name}' listens on tcp port {sc.port} of '{svc.node}'; the "
                "refused probe needs a port nothing listens on",
            )


def _client_problem(client: str, svc: _Service | None, doc: _Doc) -> str | None:
    if client not in doc.nodes:
        return f"unknown node '{client}'{_suggest(client, doc.nodes)}"
    if svc is None or svc.node is None or svc.node not in doc.nodes:
        return None  # the service is already reported
    if client == svc.node:
        return (
            f"'{client}' runs service '{svc.name}' itself; its clients must be on other nodes "
            "(a node talks to itself over loopback, which is not captured)"
        )
    return _reach_problem(doc.nodes[client], doc.nodes[svc.node], svc.name, doc)


def _reach_problem(c: _Node, s: _Node, service: str, doc: _Doc) -> str | None:
    """Can client ``c`` reach ``s`` and ``s`` answer? Either they share a network, or ``c``'s
    gateway router is on the server's first network (the address the client dials) and
    ``s``'s gateway router is on the network ``c`` sends from."""
    if {i.network for i in c.ifaces} & {i.network for i in s.ifaces}:
        return None
    if not s.ifaces or (c.gateway is not None and c.gateway_router is None):
        return None  # already reported
    target = s.ifaces[0].network
    lead = f"'{c.name}' cannot reach service '{service}' on '{s.name}': they share no network"
    if c.gateway_router is None:
        return f"{lead} and '{c.name}' has no gateway"
    router = doc.nodes[c.gateway_router]
    if target not in {i.network for i in router.ifaces}:
        return f"{lead} and its gateway '{router.name}' is not attached to '{target}'"
    source = _network_of(c, c.gateway, doc)
    if s.gateway is not None and s.gateway_router is None:
        return None  # already reported
    if s.gateway_router is None:
        return (
            f"'{s.name}' cannot answer '{c.name}': they share no network and '{s.name}' "
            "has no gateway"
        )
    back = doc.nodes[s.gateway_router]
    if source not in {i.network for i in back.ifaces}:
        return (
            f"'{s.name}' cannot answer '{c.name}': its gateway '{back.name}' is not attached "
            f"to '{source}'"
        )
    return None


def _network_of(node: _Node, addr: IPv4Address | None, doc: _Doc) -> str | None:
    for iface in node.ifaces:
        net = doc.networks.get(iface.network)
        if addr is not None and net is not None and net.subnet is not None and addr in net.subnet:
            return iface.network
    return None


# --- the document ------------------------------------------------------------------------


def _read_document(r: _Reader, root: Node, filename: str) -> _Doc:
    doc = _Doc()
    if not isinstance(root, MappingNode):
        r.p.add(
            _line(root),
            (),
            f"the top level must be a mapping (name, networks, nodes, ...), got {_describe(root)}",
        )
        return doc
    spec = r.fields(root, (), 1, _TOP_KEYS, _REQUIRED_TOP)
    if spec is None:  # pragma: no cover - a mapping always gives fields
        return doc
    # An optional section left empty (``services:`` with everything commented out) is absent.
    spec = {k: e for k, e in spec.items() if k in _REQUIRED_TOP or not _is_null(e.value)}
    _read_name(r, spec, filename, doc)
    # Order matters: nodes refer to networks, and the cross checks come after all reading.
    sections = (
        ("networks", _read_networks),
        ("nodes", _read_nodes),
        ("services", _read_services),
        ("scenarios", _read_scenarios),
    )
    for key, read in sections:
        if key in spec:
            read(r, spec[key], doc)
    if "capture" in spec:
        doc.capture = _read_capture(r, spec["capture"])
    return doc


def _read_name(r: _Reader, spec: dict[str, _Entry], filename: str, doc: _Doc) -> None:
    if "description" in spec:
        doc.description = r.text(spec["description"].value, ("description",)) or ""
    if "name" in spec:
        doc.name = r.name(spec["name"].value, ("name",))
        return
    stem = Path(filename).stem
    if is_valid_name(stem):
        doc.name = stem
    else:
        r.p.add(
            1,
            ("name",),
            f"no 'name' given and the file name {stem!r} is not a valid name ({NAME_RULE}); "
            "add a 'name:' key",
        )


def _check(p: _Problems, doc: _Doc) -> None:
    _check_ssh(p, doc)
    owners = _check_addresses(p, doc)
    _check_gateways(p, doc, owners)
    _check_services(p, doc)
    _check_scenarios(p, doc)


def _build(doc: _Doc, source: Path | None) -> Topology:
    """The model, from a document that had no problems (so every field is present)."""
    assert doc.name is not None
    networks = []
    for net in doc.networks.values():
        assert net.subnet is not None
        networks.append(Network(net.name, net.subnet))
    nodes = []
    for n in doc.nodes.values():
        ifaces = tuple(Interface(i.network, i.address) for i in n.ifaces if i.address)
        nodes.append(ModelNode(n.name, ifaces, router=n.router, gateway=n.gateway, ssh=n.ssh))
    services = []
    for s in doc.services.values():
        assert s.node is not None and s.program is not None and s.port is not None
        services.append(Service(s.name, s.node, s.program, s.port, tuple(s.options)))
    scenarios = []
    for sc in doc.scenarios:
        assert sc.name and sc.service
        assert sc.probe is not None or (sc.send is not None and sc.expect is not None)
        scenarios.append(
            Scenario(
                name=sc.name,
                service=sc.service,
                clients=tuple(c for c, _ in sc.clients),
                send=tuple(sc.send or ()),
                expect=tuple(sc.expect or ()),
                concurrency=sc.concurrency,
                hold=sc.hold,
                half_close=sc.half_close,
                claims=tuple(c for c, _ in sc.claims),
                probe=sc.probe,
                port=sc.port,
                expect_error=sc.expect_error,
                restart=tuple(sc.restart),
                start_after=sc.start_after,
                repeat=sc.repeat,
                rcvbuf=sc.rcvbuf,
                pause_reading=sc.pause_reading,
            )
        )
    return Topology(
        name=doc.name,
        networks=tuple(networks),
        nodes=tuple(nodes),
        services=tuple(services),
        scenarios=tuple(scenarios),
        capture=doc.capture,
        description=doc.description,
        source=source,
    )


def _parse(text: str, filename: str, source: Path | None) -> tuple[list[str], Topology | None]:
    problems = _Problems(filename)
    root = _compose(text, problems)
    if root is None:
        if not problems.items:
            problems.add(
                1, (), "the file is empty; a topology needs at least 'networks' and 'nodes'"
            )
        return problems.lines(), None
    reader = _Reader(problems)
    doc = _read_document(reader, root, filename)
    _check(problems, doc)
    if problems.items:
        return problems.lines(), None
    return [], _build(doc, source)


def _read_text(path: Path) -> tuple[str | None, str | None]:
    """The file's text, or a located problem saying why it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"{path}:1: (document): cannot read the file: {exc.strerror or exc}"
    if len(data) > MAX_FILE_BYTES:
        return None, f"{path}:1: (document): the file is larger than {MAX_FILE_BYTES} bytes"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, f"{path}:{line}: (document): not UTF-8 text ({exc.reason})"


# --- public API --------------------------------------------------------------------------


def load_topology_text(text: str, filename: str = "<text>") -> Topology:
    """Check a topology given as text; ``filename`` is what problems are located in."""
    problems, topology = _parse(text, filename, None)
    if topology is None:
        raise TopologyError(problems)
    return topology


def load_topology(path: Path) -> Topology:
    """Read and check a topology file. Raises ``TopologyError`` carrying every problem,
    each ``FILE:LINE: key.path: message`` with FILE as given."""
    text, problem = _read_text(path)
    if text is None:
        assert problem is not None
        raise TopologyError([problem])
    problems, topology = _parse(text, str(path), path)
    if topology is None:
        raise TopologyError(problems)
    return topology


def validate_file(path: Path) -> list[str]:
    """Every problem of a topology file, in file order; empty if the file is fine."""
    try:
        load_topology(path)
    except TopologyError as exc:
        return exc.problems
    return []
