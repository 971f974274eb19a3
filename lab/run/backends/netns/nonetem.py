"""Impairments on a kernel without netem: loss by nftables, rate by tbf.

Loss is dropped in the switch's namespace, in the bridge's ``forward`` hook, by
``numgen random`` (nftables' form of the ``statistic`` match in random mode: iptables'
own tables never see bridged frames here, since bridge netfilter stays off in the switch).
A node's ``ingress`` loss drops frames the bridge would send out of the switch's end of
its veth (``oifname``), its ``egress`` loss frames the bridge receives from it
(``iifname``): either way on the wire, after the sender's capture, before the receiver's,
so the sender's TCP learns of the loss only from the missing ACKs. Each (veth, direction)
has a base chain of its own in table ``bridge slab_loss``, flushed and refilled on a change.

Rate is a tbf qdisc where netem would be: the switch's end of the veth for ``ingress``,
the node's own end for ``egress``. Everything lives in the run's namespaces and goes with
them. Delay, jitter, duplication, reordering and corruption have no such substitute."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from lab.errors import BackendError, UsageError
from lab.run.backends import kernel
from lab.spec.model import Topology
from lab.spec.netem import NO_NETEM_KERNEL, Direction, Netem

TABLE = "slab_loss"
SCALE = 1_000_000  # numgen's range: loss resolution of 0.0001%
MTU_BYTES = 1514  # a tbf queue of `limit` packets, counted in full frames
DEFAULT_LIMIT = 1000  # packets, netem's own default
NO_NETEM_NOTE = (
    "no netem in this kernel: loss is dropped by nftables on the switch side, rate "
    "limited by tbf; delay and the rest need netem (topologies/README.md, `netem`)"
)


def refusal(where: str, keys: Sequence[str]) -> str:
    """The one line that refuses impairments this kernel cannot make."""
    return (
        f"{NO_NETEM_KERNEL}: {', '.join(keys)} ({where}) need it; without netem only "
        "`loss` (dropped by nftables) and `rate` (tbf) can be applied"
    )


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{' '.join(argv)}: {exc}") from exc


def loss_argv(switch_ns: str, veth: str, direction: Direction, loss: float) -> list[str]:
    """One ``nft`` call: the chain of (veth, direction) made if new, emptied, and given
    the random drop when ``loss`` is above zero. Every token is its own argument."""
    chain = f"{'in' if direction == 'ingress' else 'out'}_{veth}"
    argv = ["ip", "netns", "exec", switch_ns, "nft",
            "add", "table", "bridge", TABLE, ";",
            "add", "chain", "bridge", TABLE, chain,
            "{", "type", "filter", "hook", "forward", "priority", "0", ";", "}", ";",
            "flush", "chain", "bridge", TABLE, chain]  # fmt: skip
    if loss > 0:
        # The bridge sends ``ingress`` frames out of the veth, receives ``egress`` ones.
        port = "oifname" if direction == "ingress" else "iifname"
        below = round(loss / 100 * SCALE)
        # numgen's values are 0 .. SCALE-1, so "lt SCALE" cannot be said: 100% drops all.
        chance = ["numgen", "random", "mod", str(SCALE), "lt", str(below)] if below < SCALE else []
        argv += [";", "add", "rule", "bridge", TABLE, chain, port, veth, *chance, "drop"]
    return argv


def tbf_args(netem: Netem) -> list[str]:
    """The qdisc part of ``tc qdisc replace dev DEV root ...`` for ``netem``'s rate."""
    # A burst of 4 ms at the rate (a 250 Hz tick) but never less than two frames.
    burst = max(netem.rate_bit // 8 // 250, 2 * MTU_BYTES)
    limit = (netem.limit or DEFAULT_LIMIT) * MTU_BYTES
    return ["tbf", "rate", f"{netem.rate_bit}bit", "burst", str(burst), "limit", str(limit)]


def rate_argv(ns: str, dev: str, netem: Netem | None) -> list[str]:
    tc = ["ip", "netns", "exec", ns, "tc", "qdisc"]
    if netem is None or not netem.rate_bit:
        return [*tc, "del", "dev", dev, "root"]
    return [*tc, "replace", "dev", dev, "root", *tbf_args(netem)]


def apply(
    switch_ns: str,
    veth: str,
    rate_at: tuple[str, str],
    direction: Direction,
    netem: Netem | None,
    where: str,
) -> None:
    """Set (``None``: remove) the loss and rate of one interface and direction; refuse,
    before changing anything, what needs netem. ``rate_at``: (namespace, device) of tbf."""
    if netem is not None and netem.netem_only():
        raise UsageError(refusal(where, netem.netem_only()))
    done = _run(argv := loss_argv(switch_ns, veth, direction, netem.loss if netem else 0.0))
    if done.returncode != 0:
        raise BackendError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    done = _run(argv := rate_argv(*rate_at, netem))
    clearing = netem is None or not netem.rate_bit
    absent = clearing and ("No such file" in done.stderr or "handle of zero" in done.stderr)
    if done.returncode != 0 and not absent:
        raise BackendError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def netem_problems(topology: Topology) -> list[str]:
    """The topology's impairments (and ``impair`` steps) this kernel cannot make, as one
    line, found before anything is created; none when the kernel has netem."""
    wanted = [(f"{i.node}'s {i.network} {i.direction}", i.netem) for i in topology.impairments]
    wanted += [
        (f"{st.node}'s {st.network} {st.direction} (impair step of {sc.name})", st.netem)
        for sc in topology.scenarios
        for st in sc.impair
    ]
    needy = [(where, n.netem_only()) for where, n in wanted if n.netem_only()]
    if not needy or kernel.kernel_has_netem():
        return []
    keys = sorted({k for _, ks in needy for k in ks})
    return [refusal(", ".join(where for where, _ in needy), keys)]
