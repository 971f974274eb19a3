"""``lab netem``: change, clear or show a live lab's link impairments (see
``lab.run.livenetem``); the values are read as the topology's ``netem`` keys are."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from lab.errors import UsageError, read_back
from lab.i18n import msg

if TYPE_CHECKING:
    from lab.run.livestate import Reply

USAGE = (
    "lab netem [LAB] NODE IFACE [--delay T] [--jitter T] [--loss P%] [--duplicate P%] "
    "[--reorder P%] [--corrupt P%] [--rate R] [--limit N] [--direction D] | --clear; "
    "lab netem [LAB] --show"
)
KEYS = ("delay", "jitter", "loss", "duplicate", "reorder", "corrupt", "rate")


def cmd_netem(args: argparse.Namespace) -> int:
    from lab.cli.live import _live
    from lab.run.livenetem import NetemRequest
    from lab.run.livestate import request
    from lab.spec.netem import netem_from_options

    words = list(args.words)
    if args.show:
        if len(words) > 1 or args.clear:
            raise UsageError.said(msg("live.usage", usage=USAGE))
        return _answer(request(_live(words[0] if words else None), "netem-show"))
    if len(words) not in (2, 3):
        raise UsageError.said(msg("live.usage", usage=USAGE))
    values = {key: getattr(args, key) for key in KEYS}
    given = any(v is not None for v in values.values()) or args.limit is not None
    if args.clear == given:
        raise UsageError.said(msg("live.netem_clear_values" if given else "live.netem_nothing"))
    netem = None if args.clear else netem_from_options(values, args.limit)
    state = _live(words[0] if len(words) == 3 else None)
    node = state.node(words[-2])
    network = _network(node.name, node.interfaces, words[-1])
    if state.backend == "ssh" and not args.allow_impair_ssh:
        raise UsageError.said(msg("live.netem_ssh", node=node.name))
    req = NetemRequest(node.name, network, args.direction, netem)
    return _answer(request(state, "netem", req.to_arg()))


def _network(node: str, interfaces: dict[str, str], word: str) -> str:
    """The network of the node's interface named ``word`` (an interface or a network)."""
    for network, iface in interfaces.items():
        if word in (iface, network):
            return network
    have = ", ".join(f"{i} ({n})" for n, i in interfaces.items())
    raise UsageError.said(msg("live.netem_no_iface", node=node, word=repr(word), have=have))


def _answer(reply: Reply) -> int:
    said = read_back(reply.message)
    print(
        said if reply.ok else f"lab: {said}",
        file=sys.stdout if reply.ok else sys.stderr,
    )
    return reply.exit_code


def add_netem_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "netem",
        help="impair a live lab's link now: [LAB] NODE IFACE --delay 100ms --loss 10%%...",
        description="Change (or --clear) the impairment of one interface of a live lab's "
        "node, in one direction; the values are those of the topology's `netem` keys. "
        "--show prints what every link carries now.",
    )
    p.add_argument("words", nargs="*", metavar="[LAB] NODE IFACE")
    for key in KEYS:
        p.add_argument(f"--{key}", metavar="VALUE", help=f"netem {key}, as in the topology")
    p.add_argument("--limit", type=int, help="packets the qdisc holds")
    p.add_argument(
        "--direction",
        choices=("egress", "ingress"),
        default="egress",
        help="egress: what the node sends out of IFACE (default); ingress: what it receives",
    )
    p.add_argument("--clear", action="store_true", help="take every impairment off IFACE")
    p.add_argument("--show", action="store_true", help="what every link carries now")
    p.add_argument(
        "--allow-impair-ssh",
        action="store_true",
        help="on the ssh backend, allow changing a real machine's interface",
    )
    p.set_defaults(func=cmd_netem)
