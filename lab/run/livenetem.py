"""``lab netem`` on a live lab: one interface's impairment changed (or cleared) by the
lab's supervisor through its backend, and what every link carries now.

The supervisor holds the backend the lab was made with, so a change goes where the
topology's own ``netem`` went (netns: the switch's side for ``ingress``; Docker: the host's
end of the veth) and teardown takes it as it takes those. The current impairments start as
the topology's and follow each change; ``--show`` prints them. Each change is also kept in
the results folder's ``live.json`` with its time, for the record of what the lab did."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from lab.errors import UsageError
from lab.i18n import msg
from lab.run.backends.base import Backend
from lab.spec.model import Topology
from lab.spec.netem import DIRECTIONS, Direction, Impairment, Netem

Key = tuple[str, str, Direction]  # node, network, direction


@dataclass(frozen=True)
class NetemRequest:
    """One ``lab netem`` change: ``netem`` None clears the interface in that direction."""

    node: str
    network: str
    direction: Direction
    netem: Netem | None

    def to_arg(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_arg(cls, arg: str) -> NetemRequest:
        try:
            data = json.loads(arg)
            direction = data["direction"]
            if direction not in DIRECTIONS:
                raise ValueError(direction)
            netem = Netem(**data["netem"]) if data["netem"] is not None else None
            return cls(str(data["node"]), str(data["network"]), direction, netem)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError.said(msg("live.netem_malformed", error=exc)) from None


@dataclass
class LiveImpairments:
    """The impairments a live lab's links carry now, and the changes made by hand."""

    now: dict[Key, Netem] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, topology: Topology) -> LiveImpairments:
        return cls({(i.node, i.network, i.direction): i.netem for i in topology.impairments})

    def change(self, backend: Backend, topology: Topology, req: NetemRequest) -> str:
        """Apply ``req`` through ``backend``; the line that says what was done."""
        node = next((n for n in topology.nodes if n.name == req.node), None)
        if node is None:
            names = ", ".join(n.name for n in topology.nodes)
            said = msg("live.netem_no_node", node=repr(req.node), names=names)
            raise UsageError.said(said)
        if req.network not in {i.network for i in node.interfaces}:
            said = msg("live.netem_no_network", node=req.node, network=repr(req.network))
            raise UsageError.said(said)
        # An all-zero impairment is none: the qdisc is removed rather than kept idle.
        netem = None if req.netem == Netem() else req.netem
        backend.set_netem(req.node, req.network, req.direction, netem)
        key: Key = (req.node, req.network, req.direction)
        if netem is None:
            self.now.pop(key, None)
        else:
            self.now[key] = netem
        what = netem.describe() if netem is not None else "none"
        self.changes.append(
            {
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "node": req.node,
                "network": req.network,
                "direction": req.direction,
                "netem": what,
            }
        )
        where = f"{req.node}'s {req.network} {req.direction}"
        return f"netem {where}: {what}" if netem is not None else f"netem {where}: cleared"

    def current(self) -> tuple[Impairment, ...]:
        return tuple(Impairment(*key, netem) for key, netem in sorted(self.now.items()))

    def show(self, interfaces: dict[str, dict[str, str]]) -> str:
        """The table of what is applied; ``interfaces``: node -> network -> interface."""
        if not self.now:
            return "no impairments: every link is as fast and lossless as the host makes it"
        lines = [f"{'NODE':10} {'INTERFACE':10} {'DIRECTION':9} NETEM"]
        for (node, network, direction), netem in sorted(self.now.items()):
            iface = interfaces.get(node, {}).get(network, network)
            lines.append(f"{node:10} {iface:10} {direction:9} {netem.describe()}")
        return "\n".join(lines)
