"""The docker backend: one container per node, one bridge network per topology network.

Everything goes through the Docker Engine API (docker SDK); no SDK object leaves this package
and every engine error becomes ``BackendError``. Each container and network is named
``slab-<rid>-<name>`` and labelled with the run id, topology and backend, and ``down`` /
``clean`` find what to remove by those labels only.

Addresses: the engine's IPAM refuses two networks with overlapping subnets ("Pool overlaps"),
so two runs of one topology could not coexist, and the host would get a route into every lab
subnet. So each bridge gets a small placeholder subnet from 198.18.0.0/15 (the benchmarking
range), and once a container runs, the node's real address replaces the placeholder on each
interface (found by its MAC address). The host then has no address in any lab subnet and no
node has a route towards the host: traffic stays between the lab's own nodes.

Networks are plain (not ``internal``) bridges with IP masquerading switched off.
``internal=True`` cannot be used: with the host's bridge netfilter on, the engine's isolation
rules for internal networks drop bridged frames whose addresses lie outside the bridge's own
subnet, which is exactly the traffic a router node forwards between two lab networks.

Containers run unprivileged: every capability dropped, then only
NET_ADMIN (routes, promiscuous capture), NET_RAW (packet sockets for tcpdump, ping),
SETUID + SETGID + CHOWN (tcpdump switches to its own user and hands it the capture file;
without these it exits "Couldn't change to 'tcpdump'"), and KILL (stopping that tcpdump,
which no longer runs as root). ``init`` (docker-init) is PID 1 so that the double-fork
server's orphans are reaped.
"""

from __future__ import annotations

from lab.run.backends.docker.backend import DockerBackend
from lab.run.backends.docker.bringup import CAPABILITIES, placeholder_subnets
from lab.run.backends.docker.engine import BACKEND_LABEL, RUN_LABEL

__all__ = ["BACKEND_LABEL", "CAPABILITIES", "RUN_LABEL", "DockerBackend", "placeholder_subnets"]
