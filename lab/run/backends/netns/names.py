"""Names of a run's objects, and finding them again by name alone (see the package doc)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from lab.run.backends.base import RUN_ID_RE
from lab.run.backends.netns.iproute import run_ip

BASE_DIR = Path("/tmp/socket-lab")
NETNS_DIR = Path("/run/netns")

# Any namespace of a run, whatever follows the prefix: teardown must find all of them.
NS_RE = re.compile(r"^slab-(?P<rid>[0-9a-f]{6})-")
NODE_RE = re.compile(r"^[a-z][a-z0-9-]*$")
SWITCH = "_switch"
OWNER_FILE = "owner.json"  # in the run's directory: the process that made the run
LINK_RE = re.compile(r"^slab(?P<rid>[0-9a-f]{6})(?P<kind>[bv])(?P<index>[0-9]+)$")

IFNAMSIZ = 15  # Linux interface names: at most 15 characters


def ns_name(run_id: str, node: str) -> str:
    return f"slab-{run_id}-{node}"


def bridge_name(run_id: str, index: int) -> str:
    return f"slab{run_id}b{index}"


def veth_name(run_id: str, index: int) -> str:
    return f"slab{run_id}v{index}"


def lab_namespaces() -> list[str]:
    """Lab namespaces on this host (any run)."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if NS_RE.match(n))


def lab_links() -> list[str]:
    """Lab bridges and host-side veths in the root namespace (any run)."""
    out = run_ip(["-j", "link", "show"])
    names = [entry.get("ifname", "") for entry in json.loads(out or "[]")]
    return sorted(n for n in names if LINK_RE.match(n))


def run_dirs() -> list[str]:
    try:
        names = os.listdir(BASE_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if RUN_ID_RE.match(n) and (BASE_DIR / n).is_dir())


def ns_rid(name: str) -> str:
    m = NS_RE.match(name)
    assert m is not None
    return m["rid"]


def link_rid(name: str) -> str:
    m = LINK_RE.match(name)
    assert m is not None
    return m["rid"]


def link_kind(name: str) -> str:
    """``b`` for a bridge, ``v`` for a host-side veth."""
    m = LINK_RE.match(name)
    assert m is not None
    return m["kind"]


def run_links(run_id: str) -> list[str]:
    return [n for n in lab_links() if link_rid(n) == run_id]
