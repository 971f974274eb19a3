"""Checks across sections, once everything is read: subnets that overlap, SSH on every node
or none, addresses inside their subnets and used once, gateways that are routers, services
on known nodes without port clashes, and scenarios whose clients can reach their service."""

from __future__ import annotations

from ipaddress import IPv4Address

from lab.spec.claims import CLAIM_SPECS as CLAIMS
from lab.spec.drafts import Doc, Net, NodeDraft, ScenarioDraft, ServiceDraft
from lab.spec.keys import MAX_NETWORKS
from lab.spec.model import ANY_ADDRESS, SERVER_PROGRAMS
from lab.spec.rules import find_overlaps
from lab.spec.yamlread import KeyPath, Problems, suggest


def check_all(p: Problems, doc: Doc) -> None:
    if len(doc.networks) <= MAX_NETWORKS:  # pairwise comparison of a huge list is not worth it
        check_overlaps(p, doc)
    check_ssh(p, doc)
    owners = check_addresses(p, doc)
    check_gateways(p, doc, owners)
    check_services(p, doc)
    check_scenarios(p, doc)


def check_overlaps(p: Problems, doc: Doc) -> None:
    nets = [n for n in doc.networks.values() if n.subnet is not None]
    subnets = [n.subnet for n in nets if n.subnet is not None]
    for i, j in find_overlaps(subnets):
        a, b = nets[i], nets[j]
        p.add(
            b.line,
            ("networks", b.name, "subnet"),
            f"subnet {b.subnet} overlaps network '{a.name}' ({a.subnet}, line {a.line})",
        )


def check_ssh(p: Problems, doc: Doc) -> None:
    """Either every node is an existing host reached over SSH, or none is."""
    with_ssh = [n for n in doc.nodes.values() if n.has_ssh]
    if not with_ssh:
        return
    first = with_ssh[0]
    for node in doc.nodes.values():
        if not node.has_ssh:
            p.add(
                node.line,
                ("nodes", node.name),
                f"node '{node.name}' has no ssh target, but '{first.name}' (line {first.line}) "
                "has one: when any node is an SSH host, every node must be",
            )


def check_addresses(p: Problems, doc: Doc) -> dict[IPv4Address, tuple[str, str]]:
    """Each interface address: in its subnet, not the network or broadcast address, used once.
    Returns the owner (node, network) of each good address."""
    owners: dict[IPv4Address, tuple[str, str]] = {}
    lines: dict[IPv4Address, int] = {}
    for node in doc.nodes.values():
        for iface in node.ifaces:
            net = doc.networks.get(iface.network)
            if iface.address is None or net is None or net.subnet is None:
                continue
            path: KeyPath = ("nodes", node.name, "interfaces", iface.network)
            problem = _address_problem(iface.address, net)
            if problem:
                p.add(iface.line, path, problem)
            elif iface.address in owners:
                who, where = owners[iface.address]
                p.add(
                    iface.line,
                    path,
                    f"address {iface.address} is already used by node '{who}' on '{where}' "
                    f"(line {lines[iface.address]})",
                )
            else:
                owners[iface.address] = (node.name, iface.network)
                lines[iface.address] = iface.line
    return owners


def _address_problem(addr: IPv4Address, net: Net) -> str | None:
    subnet = net.subnet
    assert subnet is not None
    if addr not in subnet:
        return f"{addr} is not in network '{net.name}' ({subnet})"
    if addr == subnet.network_address:
        return f"{addr} is the network address of {subnet}; use a host address"
    if addr == subnet.broadcast_address:
        return f"{addr} is the broadcast address of {subnet}; use a host address"
    return None


def check_gateways(p: Problems, doc: Doc, owners: dict[IPv4Address, tuple[str, str]]) -> None:
    for node in doc.nodes.values():
        gw = node.gateway
        if gw is None:
            continue
        problem = _gateway_problem(node, gw, doc, owners)
        if problem:
            p.add(node.gateway_line, ("nodes", node.name, "gateway"), problem)
        elif gw in owners:
            # Not owned: the gateway could not be judged because a network or address it
            # depends on is itself reported, so the model is never built from this node.
            node.gateway_router = owners[gw][0]


def _gateway_problem(
    node: NodeDraft, gw: IPv4Address, doc: Doc, owners: dict[IPv4Address, tuple[str, str]]
) -> str | None:
    if node.router:
        return "a router takes no gateway: it forwards only between its own networks"
    attached = [doc.networks[i.network] for i in node.ifaces if i.network in doc.networks]
    subnets = [n for n in attached if n.subnet is not None]
    if len(subnets) < len(node.ifaces):
        return None  # an interface is already reported; the gateway cannot be judged
    if not any(gw in n.subnet for n in subnets if n.subnet is not None):
        where = ", ".join(f"'{n.name}' {n.subnet}" for n in subnets)
        return f"gateway {gw} is not on a network this node is attached to ({where})"
    if any(i.address == gw for i in node.ifaces):
        return f"gateway {gw} is this node's own address"
    if gw not in owners:
        return f"no node has address {gw}; the gateway must be the address of a router node"
    owner = owners[gw][0]
    if not doc.nodes[owner].router:
        return f"gateway {gw} is node '{owner}', which is not a router (set router: true on it)"
    return None


def check_services(p: Problems, doc: Doc) -> None:
    taken: dict[tuple[str, str, int], tuple[str, int]] = {}
    for svc in doc.services.values():
        path: KeyPath = ("services", svc.name)
        if svc.node is not None and svc.node not in doc.nodes:
            hint = suggest(svc.node, doc.nodes)
            p.add(svc.node_line, (*path, "node"), f"unknown node '{svc.node}'{hint}")
            continue
        _check_bind(p, doc, svc)
        if svc.node is None or svc.program is None or svc.port is None:
            continue
        proto = svc.user_protocol or SERVER_PROGRAMS.get(svc.program, "tcp")
        slot = (svc.node, proto, svc.port)
        if slot in taken:
            other, line = taken[slot]
            p.add(
                svc.port_line,
                (*path, "port"),
                f"{proto} port {svc.port} on node '{svc.node}' is already used by service "
                f"'{other}' (line {line})",
            )
        else:
            taken[slot] = (svc.name, svc.line)


def _check_bind(p: Problems, doc: Doc, svc: ServiceDraft) -> None:
    """A bind address is one of the node's own (or 0.0.0.0), for a lab program."""
    if svc.bind is None or svc.node is None:
        return
    path: KeyPath = ("services", svc.name, "bind")
    if svc.user_protocol is not None:
        p.add(
            svc.bind_line,
            path,
            "a user program binds what its `run` says; bind is for lab programs",
        )
        return
    own = [i.address for i in doc.nodes[svc.node].ifaces if i.address is not None]
    if str(svc.bind) != ANY_ADDRESS and svc.bind not in own:
        known = ", ".join(str(a) for a in own) or "none"
        p.add(
            svc.bind_line,
            path,
            f"{svc.bind} is not an address of node '{svc.node}' (its addresses: {known}; or "
            f"{ANY_ADDRESS} for all)",
        )


def check_scenarios(p: Problems, doc: Doc) -> None:
    for sc in doc.scenarios:
        path: KeyPath = ("scenarios", sc.index)
        svc = doc.services.get(sc.service) if sc.service is not None else None
        if sc.service is not None and svc is None:
            hint = suggest(sc.service, doc.services)
            p.add(sc.service_line, (*path, "service"), f"unknown service '{sc.service}'{hint}")
        udp = svc is not None and svc.program is not None and svc.protocol_is("udp")
        if svc is not None and sc.knobs.get("half_close") and udp:
            p.add(
                sc.half_close_line,
                (*path, "half_close"),
                f"half_close applies to TCP only; service '{svc.name}' is UDP",
            )
        for key, line in sc.tcp_only_lines.items():
            if svc is not None and udp:
                p.add(line, (*path, key), f"{key} applies to TCP only; service '{svc.name}' is UDP")
        for j, (claim, line) in enumerate(sc.claims):
            wants = CLAIMS[claim].protocol
            if svc is None or svc.program is None or wants == "any" or svc.protocol_is(wants):
                continue
            p.add(
                line,
                (*path, "claims", j),
                f"claim '{claim}' is about {wants.upper()}; service '{svc.name}' is not",
            )
        for j, (client, line) in enumerate(sc.clients):
            problem = _client_problem(client, svc, doc)
            if problem:
                p.add(line, (*path, "clients", j), problem)
        if svc is not None:
            _check_error_keys(p, doc, sc, svc)
        if sc.client_program is not None:
            _check_client_program(p, doc, sc, svc)


def _check_client_program(
    p: Problems, doc: Doc, sc: ScenarioDraft, svc: ServiceDraft | None
) -> None:
    """A client program is a user program of the file speaking the service's protocol."""
    path: KeyPath = ("scenarios", sc.index, "client_program")
    name = sc.client_program or ""
    if name not in doc.programs:
        known = ", ".join(doc.programs) or "none"
        hint = suggest(name, doc.programs)
        p.add(sc.client_program_line, path, f"unknown program '{name}'{hint}; programs: {known}")
        return
    program = doc.programs[name]
    if program is None or svc is None or svc.program is None:
        return  # already reported
    if not svc.protocol_is(program.protocol):
        p.add(
            sc.client_program_line,
            path,
            f"program '{name}' speaks {program.protocol.upper()}; service '{svc.name}' does not",
        )


def _check_error_keys(p: Problems, doc: Doc, sc: ScenarioDraft, svc: ServiceDraft) -> None:
    """A probe and a restart need a TCP service; the refused probe's port must be closed."""
    path: KeyPath = ("scenarios", sc.index)
    if svc.program is None:
        return  # already reported
    tcp = svc.protocol_is("tcp")
    if sc.probe is not None and not tcp:
        p.add(sc.probe_line, (*path, "probe"), f"probes need a TCP service; '{svc.name}' is UDP")
    if sc.restart and not tcp:
        p.add(
            sc.restart_line,
            (*path, "restart"),
            f"a restart sets SO_REUSEADDR, a TCP server option; '{svc.name}' is UDP",
        )
    if sc.restart and svc.user_protocol is not None:
        p.add(
            sc.restart_line,
            (*path, "restart"),
            f"a restart sets SO_REUSEADDR through a lab server's option; '{svc.name}' runs a "
            "user program",
        )
    if sc.probe == "refused" and sc.port is None:
        _check_refused_off_bind(p, doc, sc, svc)
    if sc.port is None or svc.node is None:
        return
    for other in doc.services.values():
        if other.node == svc.node and other.port == sc.port and other.protocol_is("tcp"):
            p.add(
                sc.port_line,
                (*path, "port"),
                f"service '{other.name}' listens on tcp port {sc.port} of '{svc.node}'; the "
                "refused probe needs a port nothing listens on",
            )


def _check_refused_off_bind(p: Problems, doc: Doc, sc: ScenarioDraft, svc: ServiceDraft) -> None:
    """A refused probe without ``port`` dials the service's own port: refused only where the
    service is not bound, so its service binds one address and its clients dial another."""
    path: KeyPath = ("scenarios", sc.index)
    if svc.bind is None or str(svc.bind) == ANY_ADDRESS:
        p.add(sc.probe_line, path, "the refused probe needs a 'port' nothing listens on")
        return
    server = doc.nodes.get(svc.node or "")
    for j, (client, line) in enumerate(sc.clients):
        node = doc.nodes.get(client)
        if server is None or node is None:
            continue  # reported elsewhere
        shared = [i.network for i in node.ifaces if i.network in {s.network for s in server.ifaces}]
        dialed = next((s.address for s in server.ifaces if shared and s.network == shared[0]), None)
        if dialed is None and server.ifaces:
            dialed = server.ifaces[0].address
        if dialed == svc.bind:
            p.add(
                line,
                (*path, "clients", j),
                f"'{client}' dials {dialed}, the address service '{svc.name}' binds: nothing "
                "refuses it (give the probe a 'port' nothing listens on, or a client on another "
                "network)",
            )


def _client_problem(client: str, svc: ServiceDraft | None, doc: Doc) -> str | None:
    if client not in doc.nodes:
        return f"unknown node '{client}'{suggest(client, doc.nodes)}"
    if svc is None or svc.node is None or svc.node not in doc.nodes:
        return None  # the service is already reported
    if client == svc.node:
        return (
            f"'{client}' runs service '{svc.name}' itself; its clients must be on other nodes "
            "(a node talks to itself over loopback, which is not captured)"
        )
    return _reach_problem(doc.nodes[client], doc.nodes[svc.node], svc.name, doc)


def _reach_problem(c: NodeDraft, s: NodeDraft, service: str, doc: Doc) -> str | None:
    """Can client ``c`` reach ``s`` and ``s`` answer? Either they share a network, or ``c``'s
    gateway router is on the server's first network (the address the client dials) and
    ``s``'s gateway router is on the network ``c`` sends from."""
    if {i.network for i in c.ifaces} & {i.network for i in s.ifaces}:
        return None
    if not s.ifaces or (c.gateway is not None and c.gateway_router is None):
        return None  # already reported
    target = s.ifaces[0].network
    lead = f"'{c.name}' cannot reach service '{service}' on '{s.name}': they share no network"
    if c.gateway_router is None:
        return f"{lead} and '{c.name}' has no gateway"
    router = doc.nodes[c.gateway_router]
    if target not in {i.network for i in router.ifaces}:
        return f"{lead} and its gateway '{router.name}' is not attached to '{target}'"
    source = _network_of(c, c.gateway, doc)
    if s.gateway is not None and s.gateway_router is None:
        return None  # already reported
    if s.gateway_router is None:
        return (
            f"'{s.name}' cannot answer '{c.name}': they share no network and '{s.name}' "
            "has no gateway"
        )
    back = doc.nodes[s.gateway_router]
    if source not in {i.network for i in back.ifaces}:
        return (
            f"'{s.name}' cannot answer '{c.name}': its gateway '{back.name}' is not attached "
            f"to '{source}'"
        )
    return None


def _network_of(node: NodeDraft, addr: IPv4Address | None, doc: Doc) -> str | None:
    for iface in node.ifaces:
        net = doc.networks.get(iface.network)
        if addr is not None and net is not None and net.subnet is not None and addr in net.subnet:
            return iface.network
    return None
