"""The ``--engines`` file: which URL reaches the Docker engine of each swarm node.

A YAML mapping, swarm node hostname or ID -> either a URL (``unix://PATH``, ``ssh://USER@HOST``,
``tcp://HOST:PORT`` with TLS) or ``{url: ..., tls: {ca: FILE, cert: FILE, key: FILE}}``. A
``tcp://`` engine must have its TLS files: a plain one would hand root on that machine to
anyone on the network. Every problem is said with the file and line it is on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from lab.errors import UsageError

# A swarm node's hostname or ID: a host name's letters; no '-' first, no spaces.
ENGINE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")
SCHEMES = ("unix://", "tcp://", "ssh://")
TLS_KEYS = ("ca", "cert", "key")
MAX_ENGINES = 64


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class EngineSpec:
    """One engine of the file: the swarm node it is (hostname or ID, as written) and its URL."""

    name: str
    url: str
    tls: Tls | None = None
    line: int = 0

    def cli_options(self) -> list[str]:
        """The ``docker`` command's global options that reach this engine, as the SDK
        does: its URL, and its TLS files (verified) for a ``tcp://`` engine."""
        options = ["--host", self.url]
        if self.tls is not None:
            options += ["--tlsverify", "--tlscacert", str(self.tls.ca),
                        "--tlscert", str(self.tls.cert), "--tlskey", str(self.tls.key)]  # fmt: skip
        return options


@dataclass(frozen=True)
class EnginesFile:
    path: Path
    engines: tuple[EngineSpec, ...]

    def where(self, spec: EngineSpec) -> str:
        return f"{self.path}:{spec.line}: {spec.name}"

    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.engines)


def _fail(path: Path, node: Node | None, message: str) -> UsageError:
    line = node.start_mark.line + 1 if node is not None else 1
    return UsageError(f"{path}:{line}: {message}")


def load_engines(path: Path) -> EnginesFile:
    """Read and check an engines file; a ``UsageError`` (exit 2) located in it otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the engines file: {exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise UsageError(f"{path}:{line}: not valid YAML: {exc}") from exc
    if not isinstance(root, MappingNode) or not root.value:
        raise _fail(path, root, "an engines file is a mapping: swarm node (hostname or ID) -> URL")
    if len(root.value) > MAX_ENGINES:
        raise _fail(path, root, f"{len(root.value)} engines; at most {MAX_ENGINES}")
    seen: dict[str, int] = {}
    engines = []
    for key, value in root.value:
        name = key.value if isinstance(key, ScalarNode) else None
        if not isinstance(name, str) or not ENGINE_NAME_RE.fullmatch(name):
            raise _fail(path, key, f"bad engine name {name!r}: a swarm node's hostname or ID")
        line = key.start_mark.line + 1
        if name in seen:
            raise _fail(path, key, f"{name}: given twice (first on line {seen[name]})")
        seen[name] = line
        engines.append(_engine(path, name, line, value))
    return EnginesFile(path, tuple(engines))


def _engine(path: Path, name: str, line: int, value: Node) -> EngineSpec:
    tls_node: Node | None = None
    if isinstance(value, MappingNode):
        fields = {k.value: v for k, v in value.value if isinstance(k, ScalarNode)}
        unknown = sorted(set(fields) - {"url", "tls"})
        if unknown:
            raise _fail(path, value, f"{name}: unknown key {unknown[0]!r} (known keys: url, tls)")
        if "url" not in fields:
            raise _fail(path, value, f"{name}: needs a url")
        url_node, tls_node = fields["url"], fields.get("tls")
    else:
        url_node = value
    url = url_node.value if isinstance(url_node, ScalarNode) else None
    if not isinstance(url, str) or not url.startswith(SCHEMES) or len(url) <= len("ssh://"):
        raise _fail(
            path, url_node, f"{name}: bad URL {url!r}: one of unix://PATH, tcp://HOST:PORT "
            "(with tls), ssh://USER@HOST"
        )  # fmt: skip
    if url.startswith("tcp://") and tls_node is None:
        raise _fail(
            path, url_node, f"{name}: a tcp:// engine needs `tls: {{ca, cert, key}}` "
            "(a plain tcp:// engine gives root on its machine to anyone who reaches it)"
        )  # fmt: skip
    if tls_node is not None and not url.startswith("tcp://"):
        raise _fail(path, tls_node, f"{name}: tls applies to tcp:// engines only")
    tls = _tls(path, name, tls_node) if tls_node is not None else None
    return EngineSpec(name, url, tls, line)


def _tls(path: Path, name: str, node: Node) -> Tls:
    if not isinstance(node, MappingNode):
        raise _fail(path, node, f"{name}: tls is a mapping {{ca, cert, key}} of files")
    files: dict[str, Path] = {}
    for k, v in node.value:
        key = k.value if isinstance(k, ScalarNode) else None
        if key not in TLS_KEYS:
            raise _fail(path, k, f"{name}: tls: unknown key {key!r} (known keys: ca, cert, key)")
        if not isinstance(v, ScalarNode) or not v.value:
            raise _fail(path, v, f"{name}: tls: {key} is a file name")
        file = (path.parent / Path(str(v.value)).expanduser()).resolve()
        if not file.is_file():
            raise _fail(path, v, f"{name}: tls: {key}: no such file {file}")
        files[str(key)] = file
    missing = [k for k in TLS_KEYS if k not in files]
    if missing:
        raise _fail(path, node, f"{name}: tls needs {', '.join(missing)}")
    return Tls(files["ca"], files["cert"], files["key"])
