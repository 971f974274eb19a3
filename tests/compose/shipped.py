"""The shipped topologies, as the compose tests see them: which compose takes and which it
refuses, and why."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Compose files are made for the topologies whose steps all happen inside the nodes: the
# user's programs are built in the nodes, a restart is done by its node, an MTU set on the
# engine's network and by its nodes, the watch and the port range are snapshots the nodes
# take. Not netem: it is set on the host's end of a link, which no container reaches.
REFUSED = {
    "experiments/reorder": "netem on network lan",
    "experiments/retransmission": "netem on network lan",
    "experiments/rtt": "netem on network lan",
    "experiments/slow-start": "netem on network lan",
}
ALL = sorted((REPO / "topologies").rglob("*.yaml"))


def shipped_id(path: Path) -> str:
    return path.relative_to(REPO / "topologies").with_suffix("").as_posix()


SHIPPED = [p for p in ALL if shipped_id(p) not in REFUSED]
