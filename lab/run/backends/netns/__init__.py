"""The network-namespace backend: every node is a Linux network namespace on this host.

Like Mininet: one namespace per node, one Linux bridge per network, and one veth pair
per node interface, whose switch end is a bridge port and whose other end is ``ethK``
inside the node. Processes on nodes are ordinary host processes that ``ip netns exec``
moved into the node's namespace, so a node's files are host files.

The bridges live in one more namespace of the run, its *switch* (``slab-<rid>-_switch``:
no node can have that name), not in the host's. The host's bridge netfilter settings are
global to its namespace and a bridge's own ``nf_call_iptables 0`` cannot turn them off:
where Docker runs (br_netfilter loaded, FORWARD policy DROP) every frame crossing a
root-namespace bridge would go through the host's iptables and be dropped, or NATed if a
lab subnet overlapped a Docker one. In the switch's namespace bridge netfilter is off and
the bridges have no address, so the host neither filters, tracks nor routes lab traffic.

Every object is named after the run id, and teardown finds objects by that name only,
never by what this process remembers; so ``down`` after a partial ``up``, after Ctrl-C,
or from another process (``clean``) all remove exactly the same things:

- namespaces ``slab-<rid>-<node>`` and ``slab-<rid>-_switch``
- in the switch: bridges ``slab<rid>b<N>`` (N: the network's index) and the switch ends
  of veths ``slab<rid>v<N>`` (N: a running interface index), within 15 characters; links
  with these names in the host's namespace are removed too (none are made there)
- node directories ``/tmp/socket-lab/<rid>/<node>/``

IPv6 is turned off on every lab interface (in each namespace before its interfaces
are up): otherwise router solicitations, DAD and MLD reports from
link-local addresses show up in every capture and have nothing to do with the course.
"""

from __future__ import annotations

from lab.run.backends.netns.backend import NetnsBackend
from lab.run.backends.netns.names import BASE_DIR, bridge_name, ns_name, veth_name

__all__ = ["BASE_DIR", "NetnsBackend", "bridge_name", "ns_name", "veth_name"]
