"""netem on Docker nodes. What a node sends is shaped on its own interface, inside the
container (it has NET_ADMIN); what it receives, on the host's end of its veth pair (found by
the container interface's ``iflink``), so that the sender's capture still holds a packet the
receiver never gets. Both ends vanish with the container, and their qdiscs with them.
On a kernel without netem, a rate is limited by tbf at the same places; nothing else.

The host's end is only reachable when the engine runs on this machine and the lab runs as
root; otherwise ``ingress`` is refused with what to do instead."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence

from lab.errors import BackendError, UsageError
from lab.run.backends import kernel
from lab.run.backends.base import Completed
from lab.run.backends.netns.nonetem import tbf_args
from lab.spec.model import Topology
from lab.spec.netem import NO_NETEM_KERNEL, Direction, Netem

Run = Callable[[Sequence[str]], Completed]
# Without netem, only the rate has a substitute here (tbf, on the same two ends as netem).
# The netns backend's loss (nftables drops) has no simple place: a node's ingress is the
# host's end of its link, whose netfilter is the host's own and shared with Docker's rules,
# and the node image has no nft or iptables.
NO_NETEM_DOCKER = (
    f"{NO_NETEM_KERNEL}, which Docker's containers share: only `rate` (tbf) can be applied "
    "on Docker; loss without netem works on the netns backend only (--backend netns)"
)


def needs_netem(netem: Netem) -> list[str]:
    """The keys of ``netem`` that Docker cannot make without the netem qdisc."""
    return (["loss"] if netem.loss else []) + netem.netem_only()


def refusal(netem: Netem) -> str:
    return f"{NO_NETEM_DOCKER} (asked for: {', '.join(needs_netem(netem))})"


def netem_problems(topology: Topology) -> list[str]:
    """Impairments refused before any container exists, when the kernel lacks netem."""
    wanted = [i.netem for i in topology.impairments]
    wanted += [st.netem for sc in topology.scenarios for st in sc.impair]
    keys = sorted({k for n in wanted for k in needs_netem(n)})
    if keys and not kernel.kernel_has_netem():
        return [f"{NO_NETEM_DOCKER} (asked for: {', '.join(keys)})"]
    return []


def qdisc_argv(dev: str, netem: Netem | None) -> list[str]:
    if netem is None or (not netem.rate_bit and not kernel.kernel_has_netem()):
        return ["tc", "qdisc", "del", "dev", dev, "root"]
    qdisc = netem.tc_args() if kernel.kernel_has_netem() else tbf_args(netem)
    return ["tc", "qdisc", "replace", "dev", dev, "root", *qdisc]


def check(argv: Sequence[str], returncode: int, stderr: str, clearing: bool) -> None:
    """Raise for a failed ``tc``; removing a qdisc that is not there is what was asked."""
    if returncode == 0:
        return
    if clearing and ("No such file" in stderr or "handle of zero" in stderr):
        return
    if "qdisc kind is unknown" in stderr:
        raise BackendError(NO_NETEM_DOCKER)
    raise BackendError(f"{' '.join(argv)} failed: {stderr.strip()}")


def host_peer(iflink: int) -> str:
    """The host's interface with index ``iflink``: the host end of a container's veth."""
    try:
        out = subprocess.run(
            ["ip", "-j", "link", "show"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackendError(f"ip link show: {exc}") from exc
    for link in json.loads(out or "[]"):
        if link.get("ifindex") == iflink and link.get("ifname"):
            return str(link["ifname"])
    raise BackendError(
        "netem ingress on Docker needs the engine on this machine (the host's end of the "
        "container's link); shape the sender's egress instead"
    )


def set_netem(
    run: Run, iface: str, direction: Direction, netem: Netem | None, *, root: bool
) -> None:
    """Shape ``iface`` of a container (through ``run``, a command on the node) in
    ``direction``; ``None`` removes the qdisc. Without netem in the kernel, a rate is
    made by tbf and anything else refused before a change."""
    if netem is not None and not kernel.kernel_has_netem() and needs_netem(netem):
        raise UsageError(refusal(netem))
    clearing = qdisc_argv(iface, netem)[2] == "del"
    if direction == "egress":
        argv = qdisc_argv(iface, netem)
        done = run(argv)
        check(argv, done.returncode, done.stderr, clearing)
        return
    if not root:
        raise BackendError("netem ingress on Docker needs root (tc on the host's end)")
    done = run(["cat", f"/sys/class/net/{iface}/iflink"])
    if not done.ok or not done.stdout.strip().isdigit():
        raise BackendError(f"docker: no link index for {iface}: {done.stderr.strip()}")
    argv = qdisc_argv(host_peer(int(done.stdout)), netem)
    try:
        host = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{' '.join(argv)}: {exc}") from exc
    check(argv, host.returncode, host.stderr, clearing)
