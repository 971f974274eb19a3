"""The validated topology: pure, immutable data. No I/O happens here.

``lab.spec.topology`` turns a YAML file into these objects (or reports every problem at
once); everything after that — backends, session, scenarios — reads only these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.spec.netem import Impairment, ImpairStep

# Server programs of lab.programs a service may run, and the protocol each speaks.
SERVER_PROGRAMS: Mapping[str, str] = {
    "fork_server": "tcp",
    "thread_server": "tcp",
    "iterative_server": "tcp",
    "dict_server": "tcp",
    "udp_echo": "udp",
}

# Options a service may set, per program, mapped to the program's command-line flag.
# A bool option becomes a bare flag when true; an int or float option becomes "flag value".
SERVICE_OPTIONS: Mapping[str, Mapping[str, tuple[type, str]]] = {
    "fork_server": {
        "backlog": (int, "--backlog"),
        "reuseaddr": (bool, "--reuseaddr"),
        "no_reap": (bool, "--no-reap"),
        "double_fork": (bool, "--double-fork"),
        "close_delay": (float, "--close-delay"),
    },
    "thread_server": {"backlog": (int, "--backlog"), "reuseaddr": (bool, "--reuseaddr")},
    "iterative_server": {"backlog": (int, "--backlog"), "reuseaddr": (bool, "--reuseaddr")},
    "dict_server": {"backlog": (int, "--backlog"), "reuseaddr": (bool, "--reuseaddr")},
    "udp_echo": {},
}

OptionValue = int | bool | float

# The address a service binds when the file gives no ``bind``: every address of its node.
ANY_ADDRESS = "0.0.0.0"

# The design of each lab server, as a user program's ``model`` names it.
LAB_MODELS: Mapping[str, str] = {
    "fork_server": "fork",
    "thread_server": "thread",
    "iterative_server": "iterative",
    "udp_echo": "udp",
}

# Sequences of lab.programs.probe a scenario may run instead of the line client.
PROBES: tuple[str, ...] = ("refused", "epipe", "long-line", "read-returns")
# The errors a probe scenario may expect (``expect_error``), by errno name.
PROBE_ERRORS: tuple[str, ...] = ("ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT")
# The errors a restarted service may be expected to fail with (``restart[i].expect``).
RESTART_ERRORS: tuple[str, ...] = ("EADDRINUSE",)


@dataclass(frozen=True)
class Network:
    name: str
    subnet: IPv4Network
    # The link MTU of every interface on the network; None leaves the backend's (1500).
    mtu: int | None = None


@dataclass(frozen=True)
class Interface:
    """A node's attachment to a network. The interface's name on the node is the backend's."""

    network: str
    address: IPv4Address


@dataclass(frozen=True)
class SshTarget:
    """How the ssh backend reaches an existing host that plays a node.

    ``key`` is a private key file (``~`` and paths relative to the topology file allowed);
    ``agent`` lets an SSH agent offer keys too. ``jump`` is a host to connect through
    (like OpenSSH's ProxyJump), without a jump of its own. ``python`` is the interpreter
    on that host that runs the lab's programs.
    """

    host: str
    port: int = 22
    user: str = "root"
    key: str | None = None
    agent: bool = False
    jump: SshTarget | None = None
    python: str = "python3"

    def __str__(self) -> str:
        where = f"{self.user}@{self.host}:{self.port}"
        return f"{where} via {self.jump}" if self.jump is not None else where


@dataclass(frozen=True)
class Node:
    name: str
    interfaces: tuple[Interface, ...]
    router: bool = False
    gateway: IPv4Address | None = None
    ssh: SshTarget | None = None  # an existing host reached over SSH (the ssh backend)
    engine: str | None = None  # the swarm node whose engine runs it (the swarm backend)

    def address_on(self, network: str) -> IPv4Address | None:
        for iface in self.interfaces:
            if iface.network == network:
                return iface.address
        return None

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(i.network for i in self.interfaces)


PLACEHOLDERS = ("{port}", "{host}")


@dataclass(frozen=True)
class UserProgram:
    """A user's own program, built where it runs.

    ``sources`` are absolute paths (files or folders), each copied into the build folder
    under its own name; ``build`` is the argument list run there (empty: nothing to
    build); ``run`` the argument list that starts it, with ``{port}`` and ``{host}`` still
    in it (see ``argv``). ``model`` decides which built-in checks apply."""

    name: str
    sources: tuple[Path, ...]
    build: tuple[str, ...]
    run: tuple[str, ...]
    protocol: str = "tcp"
    model: str = "other"
    run_given: bool = False  # the file gave ``run``: no default arguments are added
    written: tuple[str, ...] = ()  # each source as the file wrote it, for messages

    def argv(self, host: str, port: int, *, client: bool) -> list[str]:
        """The command with its placeholders filled. Without a ``run`` of the file's own, a
        service gets ``PORT`` and a client ``HOST PORT`` after the program."""
        words = list(self.run)
        if not self.run_given:
            words += ["{host}", "{port}"] if client else ["{port}"]
        return [w.replace("{port}", str(port)).replace("{host}", host) for w in words]


@dataclass(frozen=True)
class Service:
    """A server program running on a node for the whole run."""

    name: str
    node: str
    program: str
    port: int
    options: tuple[tuple[str, OptionValue], ...] = ()
    user: UserProgram | None = None  # the program is the user's own, of ``programs``
    bind: str = ANY_ADDRESS  # the address the server binds: one of its node's, or all

    @property
    def protocol(self) -> str:
        return self.user.protocol if self.user is not None else SERVER_PROGRAMS[self.program]

    @property
    def model(self) -> str:
        """The server's design, which decides the built-in checks: the user's ``model``, or
        the lab program's own (``fork_server`` is ``fork`` ...; the dictionary ``other``)."""
        if self.user is not None:
            return self.user.model
        return LAB_MODELS.get(self.program, "other")

    def args(self) -> list[str]:
        """The program's command-line arguments (after ``-m lab.programs.<program>``)."""
        argv = ["server"] if self.program == "udp_echo" else []
        argv += ["--host", self.bind, "--port", str(self.port)]
        flags = SERVICE_OPTIONS[self.program]
        for key, value in self.options:
            _, flag = flags[key]
            if isinstance(value, bool):
                if value:
                    argv.append(flag)
            else:
                argv += [flag, str(value)]
        return argv

    def option(self, key: str) -> OptionValue | None:
        return dict(self.options).get(key)

    def with_option(self, key: str, value: OptionValue) -> Service:
        """The same service with one option set (added, or replacing the file's value)."""
        kept = tuple((k, v) for k, v in self.options if k != key)
        return replace(self, options=(*kept, (key, value)))


@dataclass(frozen=True)
class Restart:
    """After a scenario's clients: stop its service and start it again on the same port,
    with SO_REUSEADDR or without. ``expect`` is the errno name the new start must fail
    with (its bind); None means it must listen."""

    reuseaddr: bool
    expect: str | None = None


@dataclass(frozen=True)
class Bug:
    """A scenario whose service has a known bug: the checks of ``caught_by`` (claim names,
    or ``lab.spec.keys.BUILTIN_CHECKS``) are expected to fail, which shows the bug; with
    ``race`` (some of them) they may hold too (the bug shows only now and then)."""

    what: str
    caught_by: tuple[str, ...]
    race: tuple[str, ...] = ()  # of caught_by: those that fail only when a race is lost


@dataclass(frozen=True)
class Scenario:
    """Clients on some nodes talk to one service; what they must get back is checked."""

    name: str
    service: str
    clients: tuple[str, ...]
    send: tuple[str, ...]
    expect: tuple[str, ...]
    concurrency: int = 1
    hold: float = 0.0
    half_close: bool = False
    claims: tuple[str, ...] = ()  # names of lab.spec.claims.CLAIM_SPECS judged on this scenario
    probe: str | None = None  # run lab.programs.probe PROBE instead of the line client
    port: int | None = None  # the port a probe dials, if not the service's (refused)
    expect_error: str | None = None  # errno name each probe must end with; None: no error
    restart: tuple[Restart, ...] = ()  # done in order after every scenario's clients
    start_after: float = 0.0  # seconds after the scenarios start before these clients do
    repeat: int = 1  # the send list is sent this many times (expect comes back as often)
    rcvbuf: int = 0  # SO_RCVBUF of the clients' sockets; 0 leaves the kernel's default
    pause_reading: float = 0.0  # seconds the clients send without reading any reply
    reply_timeout: float = 10.0  # seconds a client waits to connect and for each reply
    client_program: str | None = None  # a user program of ``programs`` as the client
    impair: tuple[ImpairStep, ...] = ()  # netem changed while the scenarios run
    server_closes_after: int = 0  # the service closes after this many replies; 0: never
    bug: Bug | None = None  # a known bug of the service, and the checks that catch it
    watch: float = 0.0  # seconds of snapshots every WATCH_EVERY after the 'after' one

    @property
    def expected_replies(self) -> tuple[str, ...]:
        """Every reply one connection must get, in order: ``expect``, ``repeat`` times (the
        first ``server_closes_after`` of them, when the server closes early on purpose)."""
        every = self.expect * self.repeat
        return every[: self.server_closes_after] if self.server_closes_after else every

    @property
    def connections_per_node(self) -> int:
        return self.concurrency

    @property
    def total_connections(self) -> int:
        return self.concurrency * len(self.clients)


# The kernel rings of a lab's tcpdumps together, and the least one gets (tcpdump's own
# default), in KiB. With --immediate-mode each ring slot holds one packet of up to 64 KiB
# (offloads), so tcpdump's default 2 MiB ring holds 16 packets: a burst while it waits
# for a CPU on a busy machine was lost (CI of 7b03a98: 57 of 187 on one interface). 8 MiB
# hold 64; every MiB costs tcpdump's start about 3 ms here (32 MiB made a run 0.25 s slower).
LAB_RING_KIB = 1024 * 1024
LEAST_RING_KIB = 2048


@dataclass(frozen=True)
class Capture:
    enabled: bool = True
    snaplen: int = 262144
    filter: str = ""
    buffer: int = 8  # MiB per tcpdump, before the lab-wide bound

    def ring_kib(self, interfaces: int) -> int:
        """Each tcpdump's ring (``-B``, KiB) in a lab capturing on ``interfaces``."""
        return min(self.buffer * 1024, max(LEAST_RING_KIB, LAB_RING_KIB // max(interfaces, 1)))


@dataclass(frozen=True)
class Topology:
    name: str
    networks: tuple[Network, ...]
    nodes: tuple[Node, ...]
    services: tuple[Service, ...] = ()
    scenarios: tuple[Scenario, ...] = ()
    capture: Capture = field(default_factory=Capture)
    description: str = ""
    source: Path | None = None
    # The text the model was read from, as read: a pipe (``<(...)``) cannot be read twice,
    # and a file may have changed since, so a run keeps this and not a second reading.
    text: str | None = field(default=None, compare=False, repr=False)
    programs: tuple[UserProgram, ...] = ()
    # netem per node interface and direction, a network's already spread over its nodes.
    impairments: tuple[Impairment, ...] = ()

    def program(self, name: str) -> UserProgram:
        for p in self.programs:
            if p.name == name:
                return p
        raise KeyError(name)

    def used_programs(self) -> list[UserProgram]:
        """The user programs a service or a scenario's client runs, in file order."""
        names = {s.program for s in self.services if s.user is not None}
        names |= {sc.client_program for sc in self.scenarios if sc.client_program}
        return [p for p in self.programs if p.name in names]

    def user_program_nodes(self) -> list[str]:
        """The nodes that run (and so build) at least one user program, in node order."""
        running = {n for p in self.used_programs() for n in self.nodes_running(p.name)}
        return [n.name for n in self.nodes if n.name in running]

    def nodes_running(self, program: str) -> list[str]:
        """The nodes a user program runs on: its services' nodes and its scenarios' clients."""
        nodes = [s.node for s in self.services if s.user is not None and s.program == program]
        for sc in self.scenarios:
            if sc.client_program == program:
                nodes += sc.clients
        return list(dict.fromkeys(nodes))

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def network(self, name: str) -> Network:
        for n in self.networks:
            if n.name == name:
                return n
        raise KeyError(name)

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)

    def scenario_port(self, scenario: Scenario) -> int:
        """The port a scenario's clients dial: its own ``port`` (a probe), else the service's."""
        if scenario.port is not None:
            return scenario.port
        return self.service(scenario.service).port

    def target_address(self, service: Service, client: str) -> IPv4Address:
        """The server address a client node uses: on a shared network if there is one,
        else the server's first address (reached through the client's gateway)."""
        server = self.node(service.node)
        for net in self.node(client).networks:
            addr = server.address_on(net)
            if addr is not None:
                return addr
        return server.interfaces[0].address

    def gateway_network(self, node: Node) -> str | None:
        """The network through which a node reaches its default gateway, if it has one."""
        if node.gateway is None:
            return None
        for iface in node.interfaces:
            if node.gateway in self.network(iface.network).subnet:
                return iface.network
        return None
