"""What the backend contract's tests share: the backends they run on, the small topologies
they bring up, and the stdlib one-liners that tell what a node sees (no ping, no iproute2
inside the nodes)."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address, IPv4Network

from lab.run.backends.base import Backend
from lab.spec.model import Interface, Network, Node, Topology

BACKENDS = ["netns", "docker", "ssh", "swarm"]

# The fixture (from tests/conftest.py or tests/backends/conftest.py) that checks a backend
# can run here. The ssh backend drives existing hosts: its fixture gives the backend class,
# whose up() first brings up real sshd hosts that match the topology (tests/ssh/hosts.py).
CAPABILITY = {
    "netns": "root",
    "docker": "docker_engine",
    "ssh": "ssh_hosts",
    "swarm": "swarm_backend",
}

A = IPv4Address


# -- topologies ---------------------------------------------------------------------------


def lan(*names: str, subnet: str = "10.20.0.0/24") -> Topology:
    """Nodes on one network, addressed .10, .11, ... in order."""
    net = IPv4Network(subnet)
    nodes = tuple(
        Node(name, (Interface("lan", net.network_address + 10 + k),))
        for k, name in enumerate(names)
    )
    return Topology("lan", (Network("lan", net),), nodes)


def routed() -> Topology:
    """h1 -- left -- r -- right -- h2, with default routes through r."""
    return Topology(
        "routed",
        (
            Network("left", IPv4Network("10.30.1.0/24")),
            Network("right", IPv4Network("10.30.2.0/24")),
        ),
        (
            Node("h1", (Interface("left", A("10.30.1.10")),), gateway=A("10.30.1.1")),
            Node(
                "r",
                (Interface("left", A("10.30.1.1")), Interface("right", A("10.30.2.1"))),
                router=True,
            ),
            Node("h2", (Interface("right", A("10.30.2.10")),), gateway=A("10.30.2.1")),
        ),
    )


# -- what the nodes see, in stdlib one-liners -----------------------------------------------

IFADDRS = textwrap.dedent(
    """
    import fcntl, json, socket, struct, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = {}
    for index, name in socket.if_nameindex():
        req = struct.pack("256s", name.encode())
        try:
            addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
            mask = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x891B, req)[20:24])  # SIOCGIFNETMASK
        except OSError:
            continue
        prefix = bin(struct.unpack("!I", socket.inet_aton(mask))[0]).count("1")
        out[name] = f"{addr}/{prefix}"
    print(json.dumps(out))
    """
)

# A TCP echo server: one line back per connection, for as long as it runs.
TCP_ECHO = textwrap.dedent(
    """
    import socket, sys
    srv = socket.create_server(("0.0.0.0", int(sys.argv[1])))
    print("listening", flush=True)
    while True:
        conn, peer = srv.accept()
        with conn:
            conn.sendall(b"echo " + conn.recv(1024))
    """
)

# Connects (retrying while the server starts), sends argv[3], prints the reply.
TCP_CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    for attempt in range(100):
        try:
            c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
            break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit("could not connect")
    c.sendall(sys.argv[3].encode())
    print(c.recv(1024).decode())
    """
)

# A UDP server that answers each datagram with the TTL it arrived with and its source.
UDP_TTL_SERVER = textwrap.dedent(
    """
    import socket, struct, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, 12, 1)  # IP_RECVTTL
    s.bind(("0.0.0.0", int(sys.argv[1])))
    while True:
        data, anc, flags, peer = s.recvmsg(1024, socket.CMSG_SPACE(4))
        ttl = [struct.unpack("i", d)[0] for lvl, typ, d in anc if typ == socket.IP_TTL]
        s.sendto(f"{ttl[0]} {peer[0]}".encode(), peer)
    """
)

# Sends with TTL 64 until answered (argv[3] tries, 0.2 s apart); prints
# "<ttl seen by server> <source seen by server>".
UDP_TTL_CLIENT = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
    s.settimeout(0.2)
    for attempt in range(int(sys.argv[3])):
        s.sendto(b"ttl?", (sys.argv[1], int(sys.argv[2])))
        try:
            print(s.recv(1024).decode())
            break
        except TimeoutError:
            pass
    else:
        sys.exit("no answer")
    """
)

# Prints which of the PIDs in argv are alive (a zombie counts as gone).
ALIVE = textwrap.dedent(
    """
    import sys
    alive = []
    for pid in sys.argv[1:]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    print(" ".join(alive))
    """
)


def py(backend: Backend, node: str, script: str, *args: str, timeout: float = 30.0) -> str:
    done = backend.run(node, [backend.python, "-c", script, *args], timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def alive(backend: Backend, node: str, *pids: int) -> list[int]:
    return [int(p) for p in py(backend, node, ALIVE, *map(str, pids)).split()]
