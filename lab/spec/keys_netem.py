"""The impairment keys: ``netem`` (per network, per node interface and direction) and a
scenario's run-time ``impair`` steps. Part of the key tables of ``lab.spec.keys``."""

from __future__ import annotations

from lab.spec.keytypes import Key, Section

IMPAIR = Section(
    "scenarios[i].impair[j]",
    (
        Key("node", "name", "the node whose interface changes", required=True),
        Key("network", "name", "that interface's network", required=True),
        Key("direction", "choice", "what the node receives (`ingress`, applied on the "
            "network's side of the link) or sends (`egress`)", default="ingress",
            choices=("ingress", "egress"), what="direction"),
        Key("start", "number", "seconds after the scenarios start", default=0,
            bounds=(0, 600)),
        Key("duration", "number", "seconds the change lasts; the step ends earlier if the "
            "scenarios do, and the link is put back either way", required=True,
            bounds=(0, 600)),
        Key("netem", "mapping", "the impairment (see `netem`); `{}` takes every impairment "
            "off for the duration", required=True, type_doc="mapping, see `netem`"),
    ),
)  # fmt: skip

_PERCENT = "a percentage, `0%` to `100%`"
NETEM = Section(
    "netem",
    (
        Key("delay", "text", "added to every packet: a number and `us`, `ms` or `s`, at "
            "most 10s", type_doc="duration"),
        Key("jitter", "text", "random variation of `delay` (needs `delay`); more jitter than "
            "the gap between packets reorders them", type_doc="duration"),
        Key("loss", "text", "packets dropped at random: " + _PERCENT, type_doc="percentage"),
        Key("duplicate", "text", "packets sent twice: " + _PERCENT, type_doc="percentage"),
        Key("reorder", "text", "packets sent at once, ahead of the delayed others (needs "
            "`delay`): " + _PERCENT, type_doc="percentage"),
        Key("corrupt", "text", "packets with one bit flipped: " + _PERCENT,
            type_doc="percentage"),
        Key("rate", "text", "the link's speed: a number and `bit`, `kbit`, `mbit`, `gbit` "
            "(or `bps`, `kbps`, ... in bytes), 8kbit to 100gbit", type_doc="rate"),
        Key("limit", "integer", "packets the qdisc holds before it drops (the kernel's "
            "default is 1000)", bounds=(1, 1_000_000)),
    ),
)  # fmt: skip

NODE_NETEM = Section(
    "nodes.NAME.netem.NETWORK",
    (
        Key("ingress", "mapping", "what the node receives on this interface",
            type_doc="mapping, see `netem`"),
        Key("egress", "mapping", "what the node sends on this interface",
            type_doc="mapping, see `netem`"),
    ),
)  # fmt: skip
