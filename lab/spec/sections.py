"""Reading the sections of a topology file other than the scenarios: networks, nodes (with
their interfaces and SSH targets), services (with their options) and capture. Keys and plain
values are checked against ``lab.spec.keys``; what a value means is checked here."""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Network

from yaml.nodes import Node

from lab.spec.drafts import Doc, Iface, Net, NodeDraft, ServiceDraft
from lab.spec.keys import (
    CAPTURE,
    DEFAULT_PORTS,
    ENGINE_NAME_RE,
    JUMP,
    MAX_FILTER_CHARS,
    MAX_NETWORKS,
    MAX_NODES,
    MTU_RANGE,
    NAME_RULE,
    NETWORK,
    NODE,
    OPTIONS,
    PORT_RANGE,
    SERVICE,
    SSH,
    SSH_HOST_RE,
    SSH_PYTHON_RE,
    SSH_USER_RE,
    USER_PORT_MIN,
    Section,
)  # fmt: skip
from lab.spec.model import SERVER_PROGRAMS, SERVICE_OPTIONS, Capture, SshTarget
from lab.spec.netem_read import read_netem, read_node_netem
from lab.spec.rules import is_valid_name, subnet_problem, unsafe_filter_chars
from lab.spec.yamlread import Entry, KeyPath, Reader, is_empty, line_of, suggest


def read_networks(r: Reader, e: Entry, doc: Doc) -> None:
    entries = r.entries(e.value, ("networks",), "a mapping of network names to {subnet: ...}")
    if entries is None:
        return
    if is_empty(e.value):
        r.p.add(e.line, ("networks",), "needs at least one network")
    if len(entries) > MAX_NETWORKS:
        r.p.add(
            e.line, ("networks",), f"{len(entries)} networks; at most {MAX_NETWORKS} are allowed"
        )
    for ne in entries:
        path: KeyPath = ("networks", ne.key)
        net = Net(ne.key, ne.line)
        doc.networks[ne.key] = net
        if not is_valid_name(ne.key):
            r.p.add(ne.line, path, f"bad network name {ne.key!r}: {NAME_RULE}")
        spec = r.fields(ne.value, path, ne.line, NETWORK)
        if spec and "subnet" in spec:
            s = spec["subnet"]
            text = r.text(s.value, (*path, "subnet"))
            if text is not None:
                problem = subnet_problem(text)
                if problem:
                    r.p.add(line_of(s.value), (*path, "subnet"), problem)
                else:
                    net.subnet = IPv4Network(text)
        if spec and "netem" in spec:
            net.netem = read_netem(r, spec["netem"].value, (*path, "netem"))
        if spec and "mtu" in spec:
            net.mtu = r.integer(spec["mtu"].value, (*path, "mtu"), MTU_RANGE)


def read_nodes(r: Reader, e: Entry, doc: Doc) -> None:
    entries = r.entries(e.value, ("nodes",), "a mapping of node names to {interfaces: ...}")
    if entries is None:
        return
    if is_empty(e.value):
        r.p.add(e.line, ("nodes",), "needs at least one node")
    if len(entries) > MAX_NODES:
        r.p.add(e.line, ("nodes",), f"{len(entries)} nodes; at most {MAX_NODES} are allowed")
    for ne in entries:
        node = NodeDraft(ne.key, ne.line)
        doc.nodes[ne.key] = node
        path: KeyPath = ("nodes", ne.key)
        if not is_valid_name(ne.key):
            r.p.add(ne.line, path, f"bad node name {ne.key!r}: {NAME_RULE}")
        spec = r.fields(ne.value, path, ne.line, NODE)
        if spec is None:
            continue
        if "interfaces" in spec:
            _read_interfaces(r, spec["interfaces"], path, node, doc)
        if "router" in spec:
            node.router = r.value(NODE["router"], spec["router"].value, (*path, "router")) is True
        if "gateway" in spec:
            g = spec["gateway"]
            node.gateway = r.address(g.value, (*path, "gateway"))
            node.gateway_line = line_of(g.value)
        if "ssh" in spec:
            node.has_ssh = True
            node.ssh = _read_ssh(r, spec["ssh"], (*path, "ssh"), SSH)
        if "engine" in spec:
            node.engine = _read_engine(r, spec["engine"], (*path, "engine"))
        if "netem" in spec:
            own = [i.network for i in node.ifaces]
            node.netem = read_node_netem(r, spec["netem"].value, (*path, "netem"), own)


def _read_engine(r: Reader, e: Entry, path: KeyPath) -> str | None:
    value = r.text(e.value, path)
    if value is not None and not ENGINE_NAME_RE.fullmatch(value):
        rule = "a swarm node's hostname or ID (letters, digits, '.', '-', '_')"
        r.p.add(line_of(e.value), path, f"bad engine {value!r}: {rule}")
        return None
    return value


def _read_ssh(r: Reader, e: Entry, path: KeyPath, section: Section) -> SshTarget | None:
    """An SSH target: ``{host, port, user, key, agent, jump, python}``; a jump host takes
    the same keys but no jump or python of its own."""
    spec = r.fields(e.value, path, e.line, section)
    if spec is None or "host" not in spec:
        return None
    ok = True

    def text(key: str, pattern: re.Pattern[str], rule: str) -> str | None:
        nonlocal ok
        value = r.text(spec[key].value, (*path, key))
        if value is not None and not pattern.fullmatch(value):
            r.p.add(line_of(spec[key].value), (*path, key), f"bad {key} {value!r}: {rule}")
            value = None
        ok = ok and value is not None
        return value

    host = text("host", SSH_HOST_RE, "a host name or address (letters, digits, '.', ':', '-')")
    target = SshTarget(host or "")
    if "port" in spec:
        port = r.integer(spec["port"].value, (*path, "port"), PORT_RANGE)
        ok = ok and port is not None
        target = replace(target, port=port or 22)
    if "user" in spec:
        user = text("user", SSH_USER_RE, "a login name (a-z, 0-9, '_', '.', '-')")
        target = replace(target, user=user or "root")
    if "key" in spec:
        key = r.text(spec["key"].value, (*path, "key"))
        if key == "":
            r.p.add(line_of(spec["key"].value), (*path, "key"), "an empty key file name")
            key = None
        ok = ok and key is not None
        target = replace(target, key=key)
    if "agent" in spec:
        agent = r.boolean(spec["agent"].value, (*path, "agent"))
        ok = ok and agent is not None
        target = replace(target, agent=bool(agent))
    if "python" in spec:
        python = text("python", SSH_PYTHON_RE, "an interpreter path (no spaces or quotes)")
        target = replace(target, python=python or "python3")
    if "jump" in spec:
        jump = _read_ssh(r, spec["jump"], (*path, "jump"), JUMP)
        ok = ok and jump is not None
        target = replace(target, jump=jump)
    return target if ok else None


def _read_interfaces(r: Reader, e: Entry, path: KeyPath, node: NodeDraft, doc: Doc) -> None:
    ipath = (*path, "interfaces")
    entries = r.entries(e.value, ipath, "a mapping of network names to addresses")
    if entries is None:
        return
    if is_empty(e.value):
        r.p.add(e.line, ipath, "a node needs at least one interface")
    for ie in entries:
        addr = r.address(ie.value, (*ipath, ie.key))
        node.ifaces.append(Iface(ie.key, ie.line, addr))
        if ie.key not in doc.networks:
            known = ", ".join(doc.networks) or "none"
            hint = suggest(ie.key, doc.networks)
            r.p.add(
                ie.line, (*ipath, ie.key), f"unknown network '{ie.key}'{hint}; networks: {known}"
            )


def read_services(r: Reader, e: Entry, doc: Doc) -> None:
    entries = r.entries(e.value, ("services",), "a mapping of service names to {node, program}")
    for se in entries or ():
        svc = ServiceDraft(se.key, se.line)
        doc.services[se.key] = svc
        path: KeyPath = ("services", se.key)
        if not is_valid_name(se.key):
            r.p.add(se.line, path, f"bad service name {se.key!r}: {NAME_RULE}")
        spec = r.fields(se.value, path, se.line, SERVICE)
        if spec is None:
            continue
        if "node" in spec:
            svc.node = r.text(spec["node"].value, (*path, "node"))
            svc.node_line = line_of(spec["node"].value)
        if "program" in spec:
            svc.program = _read_program(r, spec["program"].value, (*path, "program"), doc)
        user = svc.program is not None and svc.program in doc.programs
        if user:
            program = doc.programs[svc.program or ""]
            svc.user_protocol = program.protocol if program is not None else None
        if "port" in spec:
            svc.port = r.integer(spec["port"].value, (*path, "port"), PORT_RANGE)
            svc.port_line = line_of(spec["port"].value)
            if user and svc.port is not None and svc.port < USER_PORT_MIN:
                r.p.add(
                    svc.port_line,
                    (*path, "port"),
                    f"port {svc.port}: a user program runs unprivileged and needs a port of "
                    f"{USER_PORT_MIN} or more",
                )
        elif user:
            r.p.add(se.line, path, f"missing required key 'port' (user program '{svc.program}')")
            svc.program = None  # reported; the cross checks leave it alone
        elif svc.program is not None:
            svc.port, svc.port_line = DEFAULT_PORTS[svc.program], se.line
        if "options" in spec:
            _read_options(r, spec["options"].value, (*path, "options"), svc)
        if "bind" in spec:
            svc.bind = r.address(spec["bind"].value, (*path, "bind"))
            svc.bind_line = line_of(spec["bind"].value)


def _read_program(r: Reader, node: Node, path: KeyPath, doc: Doc) -> str | None:
    program = r.text(node, path)
    if program is None or program in SERVER_PROGRAMS:
        return program
    if program in doc.programs:
        return program if doc.programs[program] is not None else None  # else reported
    names = [*sorted(SERVER_PROGRAMS), *doc.programs]
    r.p.add(
        line_of(node),
        path,
        f"unknown program '{program}'{suggest(program, names)}; programs: {', '.join(names)}",
    )
    return None


def _read_options(r: Reader, node: Node, path: KeyPath, svc: ServiceDraft) -> None:
    entries = r.entries(node, path)
    if entries is None or svc.program is None:
        return  # an unknown program's options cannot be checked
    if svc.program not in SERVICE_OPTIONS:
        for oe in entries:
            r.p.add(
                oe.line,
                (*path, oe.key),
                f"a user program takes no options; give its arguments in programs."
                f"{svc.program}.run",
            )
        return
    allowed = SERVICE_OPTIONS[svc.program]
    for oe in entries:
        opath = (*path, oe.key)
        if oe.key not in allowed:
            if not allowed:
                r.p.add(oe.line, opath, f"{svc.program} takes no options")
            else:
                hint = suggest(oe.key, allowed)
                known = ", ".join(sorted(allowed))
                r.p.add(
                    oe.line,
                    opath,
                    f"unknown option '{oe.key}' for {svc.program}{hint}; options: {known}",
                )
            continue
        value = r.value(OPTIONS[oe.key], oe.value, opath)
        if isinstance(value, int | float):  # bool is an int
            svc.options.append((oe.key, value))


def read_capture(r: Reader, e: Entry) -> Capture:
    spec = r.fields(e.value, ("capture",), e.line, CAPTURE)
    defaults = Capture()
    if spec is None:
        return defaults
    enabled, snaplen, bpf = defaults.enabled, defaults.snaplen, defaults.filter
    if "enabled" in spec:
        enabled = r.value(CAPTURE["enabled"], spec["enabled"].value, ("capture", "enabled")) is True
    if "snaplen" in spec:
        read = r.value(CAPTURE["snaplen"], spec["snaplen"].value, ("capture", "snaplen"))
        snaplen = read if isinstance(read, int) and read else snaplen
    buffer = defaults.buffer
    if "buffer" in spec:
        read = r.value(CAPTURE["buffer"], spec["buffer"].value, ("capture", "buffer"))
        buffer = read if isinstance(read, int) and read else buffer
    if "filter" in spec:
        bpf = _read_filter(r, spec["filter"].value) or ""
    return Capture(enabled=enabled, snaplen=snaplen, filter=bpf, buffer=buffer)


def _read_filter(r: Reader, node: Node) -> str | None:
    text = r.text(node, ("capture", "filter"))
    if text is None:
        return None
    bad = unsafe_filter_chars(text)
    if bad:
        shown = " ".join(repr(c) for c in bad)
        r.p.add(
            line_of(node),
            ("capture", "filter"),
            f"filter has characters outside the safe set: {shown} (allowed: letters, digits, "
            "space and . : / ( ) [ ] ! < > = & | + * -)",
        )
        return None
    if len(text) > MAX_FILTER_CHARS:
        r.p.add(
            line_of(node),
            ("capture", "filter"),
            f"filter is longer than {MAX_FILTER_CHARS} characters",
        )
        return None
    return text
