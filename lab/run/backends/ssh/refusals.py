"""What the ssh backend refuses in a topology before it connects to any machine."""

from __future__ import annotations

from lab.spec.model import Topology


def refusals(topology: Topology) -> list[str]:
    """What of a topology the ssh backend will not do to real machines, one sentence each."""
    problems = []
    steps = [st for sc in topology.scenarios for st in sc.impair]
    if topology.impairments or steps:
        # tc on a real machine's interface could cut the lab off its own SSH session: only
        # on the user's word, for one interface at a time (`lab netem --allow-impair-ssh`).
        nodes = sorted({i.node for i in topology.impairments} | {st.node for st in steps})
        problems.append(
            f"netem is not supported by the ssh backend (it would change real machines' "
            f"interfaces); impairments on {', '.join(nodes)}: remove `netem` or choose "
            "--backend netns or docker (a live lab's `lab netem --allow-impair-ssh` can)"
        )
    sized = [n.name for n in topology.networks if n.mtu is not None]
    if sized:
        # Changing a real interface's MTU would change it for all its traffic, and
        # the networks' machines may share it with others: not done.
        problems.append(
            f"a network `mtu` is not supported by the ssh backend (it would change real "
            f"machines' interfaces); `mtu` on {', '.join(sized)}: remove it or choose "
            "--backend netns or docker"
        )
    without = [n.name for n in topology.nodes if n.ssh is None]
    if not without:
        return problems
    return [
        *problems,
        f"the ssh backend needs an ssh target on every node; none on {', '.join(without)}"
        " (add `ssh: {host: ...}`, see topologies/README.md, or choose --backend netns "
        "or docker)",
    ]
