"""The file's parts as read: every field may be missing when it had a problem. The cross
checks (``lab.spec.crossref``) read these, and a draft without problems becomes the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from lab.spec.model import (
    SERVER_PROGRAMS,
    Bug,
    Capture,
    OptionValue,
    Restart,
    SshTarget,
    UserProgram,
)
from lab.spec.netem import Direction, ImpairStep, Netem


@dataclass
class Net:
    name: str
    line: int
    subnet: IPv4Network | None = None
    netem: Netem | None = None
    mtu: int | None = None


@dataclass
class Iface:
    network: str
    line: int
    address: IPv4Address | None


@dataclass
class NodeDraft:
    name: str
    line: int
    ifaces: list[Iface] = field(default_factory=list)
    router: bool = False
    gateway: IPv4Address | None = None
    gateway_line: int = 0
    gateway_router: str | None = None  # set once the gateway is known to be a router's address
    ssh: SshTarget | None = None
    has_ssh: bool = False  # the file gave an ssh key (even a bad one)
    engine: str | None = None
    netem: list[tuple[str, Direction, Netem]] = field(default_factory=list)


@dataclass
class ServiceDraft:
    name: str
    line: int
    node: str | None = None
    node_line: int = 0
    program: str | None = None
    port: int | None = None
    port_line: int = 0
    options: list[tuple[str, OptionValue]] = field(default_factory=list)
    bind: IPv4Address | None = None
    bind_line: int = 0
    user_protocol: str | None = None  # the program is a user program speaking this

    def protocol_is(self, protocol: str) -> bool:
        if self.user_protocol is not None:
            return self.user_protocol == protocol
        return self.program is not None and SERVER_PROGRAMS.get(self.program) == protocol


@dataclass
class ScenarioDraft:
    index: int
    line: int
    name: str | None = None
    service: str | None = None
    service_line: int = 0
    clients: list[tuple[str, int]] = field(default_factory=list)
    send: list[str] | None = None
    expect: list[str] | None = None
    # The plain keys (``SCENARIO_KNOBS``) given in the file, as read; the model's defaults
    # fill in the others.
    knobs: dict[str, Any] = field(default_factory=dict)
    half_close_line: int = 0
    claims: list[tuple[str, int]] = field(default_factory=list)
    probe: str | None = None
    probe_line: int = 0
    port: int | None = None
    port_line: int = 0
    expect_error: str | None = None
    restart: list[Restart] = field(default_factory=list)
    restart_line: int = 0
    tcp_only_lines: dict[str, int] = field(default_factory=dict)  # key -> line, if set
    client_program: str | None = None
    client_program_line: int = 0
    impair: list[ImpairStep] = field(default_factory=list)
    bug: Bug | None = None


@dataclass
class Doc:
    name: str | None = None
    description: str = ""
    networks: dict[str, Net] = field(default_factory=dict)
    nodes: dict[str, NodeDraft] = field(default_factory=dict)
    services: dict[str, ServiceDraft] = field(default_factory=dict)
    scenarios: list[ScenarioDraft] = field(default_factory=list)
    capture: Capture = field(default_factory=Capture)
    base_dir: Path = field(default_factory=Path)  # where relative sources are found
    check_sources: bool = True  # False: the source files are not looked for
    # A user program as read; None when it had a problem (it still names a program).
    programs: dict[str, UserProgram | None] = field(default_factory=dict)
    program_lines: dict[str, int] = field(default_factory=dict)
