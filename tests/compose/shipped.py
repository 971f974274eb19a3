"""The shipped topologies, as the compose tests see them: which compose takes and which it
refuses, and why."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Compose files are made for the topologies whose steps all happen inside the nodes (no
# netem): the user's programs are built in the nodes, a restart is done by its node. An
# MTU, `watch` snapshots and the port-range read are not done by the compose nodes yet.
REFUSED = {
    "experiments/reorder": "netem on network lan",
    "experiments/retransmission": "netem on network lan",
    "experiments/rtt": "netem on network lan",
    "experiments/slow-start": "netem on network lan",
    "experiments/mss": "mtu on network lan",
    "experiments/time-wait": "watch in scenario active-close",
    "experiments/ephemeral-port": "claim ephemeral-ports in scenario unbound",
}
ALL = sorted((REPO / "topologies").rglob("*.yaml"))


def shipped_id(path: Path) -> str:
    return path.relative_to(REPO / "topologies").with_suffix("").as_posix()


SHIPPED = [p for p in ALL if shipped_id(p) not in REFUSED]
