"""Impairments on an ssh node, only when the user asked for them (``lab netem
--allow-impair-ssh``): they change a real machine's interface.

Only ``egress`` (what the node sends): a real host's ingress would need an ifb device of
the lab's own. The qdisc is the root qdisc of the interface with the lab's handle
(``HANDLE``), put only over one of the kernel's defaults, so that removing it (teardown,
``lab down``, ``lab clean``, ``--clear``) gives the interface back its default and touches
nothing that was not the lab's: a root qdisc with another handle is left alone. Each
interface is written to the run's state file before it is changed, so that a later
``lab clean`` finds it after a lost supervisor. Without netem in the host's kernel, a rate
is limited by tbf; anything else is refused."""

from __future__ import annotations

import json
from collections.abc import Callable

from lab.errors import BackendError, UsageError
from lab.run.backends.netns.nonetem import tbf_args
from lab.run.backends.ssh.node import RemoteNode
from lab.spec.netem import NO_NETEM_KERNEL, Direction, Netem

HANDLE = "5ab1:"  # the lab's root qdiscs; "5ab1" reads "slab"
# Root qdiscs a kernel puts on an interface by itself: the lab may replace these.
DEFAULT_ROOTS = {"noqueue", "pfifo_fast", "fq_codel", "mq", "fq", "pfifo", "noop", "cake"}
TIMEOUT = 30.0


def _tc(r: RemoteNode, argv: list[str]) -> tuple[int, str, str]:
    done = r.host.execute(r.command(["tc", *argv]), timeout=TIMEOUT)
    if done is None:
        raise BackendError(f"node {r.state.node}: tc {' '.join(argv)} did not finish")
    code, out, err = done
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def root_qdisc(r: RemoteNode, iface: str) -> tuple[str, str]:
    """(kind, handle) of the interface's root qdisc."""
    code, out, err = _tc(r, ["-j", "qdisc", "show", "dev", iface, "root"])
    if code != 0:
        raise BackendError(f"node {r.state.node}: tc qdisc show dev {iface}: {err.strip()}")
    for q in json.loads(out or "[]"):
        if q.get("root"):
            return str(q.get("kind")), str(q.get("handle"))
    return "", ""


def remove(r: RemoteNode, iface: str) -> list[str]:
    """Take the lab's qdisc off ``iface`` if it is there; what was removed."""
    _, handle = root_qdisc(r, iface)
    if handle != HANDLE:
        return []
    code, _, err = _tc(r, ["qdisc", "del", "dev", iface, "root", "handle", HANDLE])
    if code != 0:
        raise BackendError(f"node {r.state.node}: cannot remove the qdisc of {iface}: {err}")
    return [f"{r.state.target}: qdisc {HANDLE} on {iface}"]


def set_netem(
    r: RemoteNode, iface: str, direction: Direction, netem: Netem | None, save: Callable[[], None]
) -> None:
    """Impair (``None``: restore) ``iface`` of the node; ``save`` writes the state file."""
    where = f"{r.state.node}'s {iface} {direction}"
    if direction == "ingress":
        raise UsageError(
            f"{where}: the ssh backend impairs only what a node sends (egress); "
            "impair the sender's egress instead"
        )
    if netem is None:
        remove(r, iface)
        return
    kind, handle = root_qdisc(r, iface)
    if handle != HANDLE and kind not in DEFAULT_ROOTS:
        raise UsageError(
            f"{where}: the interface has a {kind} root qdisc ({handle}) that is not the "
            "lab's; it is left as it is"
        )
    # A rate alone is tbf whatever the kernel; the rest needs netem, asked of the host's
    # kernel before anything is changed, so that a refused change leaves the link as it was.
    keys = (["loss"] if netem.loss else []) + netem.netem_only()
    if keys and not has_netem(r):
        raise UsageError(
            f"{where}: {NO_NETEM_KERNEL} on this host: {', '.join(keys)} need it; "
            "without netem only `rate` (tbf) can be applied there"
        )
    if iface not in r.state.impaired:
        r.state.impaired.append(iface)
        save()
    if handle == HANDLE:  # another kind of qdisc may not replace this one in place
        remove(r, iface)
    qdisc = netem.tc_args() if keys else tbf_args(netem)
    code, _, err = _tc(r, ["qdisc", "add", "dev", iface, "root", "handle", HANDLE, *qdisc])
    if code != 0:
        raise BackendError(f"{where}: tc qdisc add failed: {err.strip()}")


def has_netem(r: RemoteNode) -> bool:
    """Whether the host's kernel makes a netem qdisc: tried on the loopback of a throwaway
    network namespace there (as ``kernel.kernel_has_netem`` does here), which touches
    none of the host's interfaces. A probe that cannot run answers True: tc says why later."""
    probe = ["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
    done = r.host.execute(r.command(probe), timeout=TIMEOUT)
    return done is None or done[0] == 0 or b"unknown" not in done[2].lower()
