"""Claims on one real frame taken apart: its headers agree with the scenario (layer by
layer), and its port and address are in network byte order.

Both read the scenario's first data segment from a client as the server's capture holds
it (:mod:`lab.evidence.frames`). The segment is found by its client address and port only,
so that a frame whose server port or address is wrong is still found and shown.
"""

from __future__ import annotations

import struct
import sys
from ipaddress import IPv4Address

from lab.evidence.folder import Evidence
from lab.evidence.frames import TcpFrame, tcp_frames
from lab.spec.model import Scenario, Topology
from lab.verdict.check import Check
from lab.verdict.scope import Scope, scope


def server_frames(ev: Evidence, node: str) -> list[TcpFrame]:
    """Every TCP frame of ``node``'s captures, taken apart. The captures are also read as
    packets, so that damage in them is reported as for any other check."""
    out = []
    for path in ev.captures(node):
        ev.packets(path)
        out += tcp_frames(path, str(path.relative_to(ev.root)))
    return out


def first_data_segment(ev: Evidence, found: Scope) -> TcpFrame | None:
    """The scenario's first client segment carrying data, in the server's captures."""
    for f in server_frames(ev, found.service.node):
        mine = found.any_port or f.src_port in found.ports
        if f.src_ip in found.client_ips and mine and f.payload:
            return f
    return None


def _none(name: str, found: Scope) -> Check:
    return Check(
        name,
        False,
        f"no data segment of the scenario's clients {sorted(found.client_ips)} (ports "
        f"{sorted(found.ports)}) in the captures of {found.service.node}",
    )


def _stream(sc: Scenario) -> bytes:
    """What the scenario's line client writes on each connection."""
    return "".join(f"{line}\n" for line in sc.send).encode() * sc.repeat


def _server_address(topo: Topology, sc: Scenario, client_ip: str) -> str | None:
    service = topo.service(sc.service)
    for node in sc.clients:
        if client_ip in {str(i.address) for i in topo.node(node).interfaces}:
            return str(topo.target_address(service, node))
    return None


def _mac_problems(ev: Evidence, found: Scope, f: TcpFrame) -> list[str]:
    """The frame's MACs are the two ends' own: the server's replies on the connection come
    from the destination MAC and go to the source MAC."""
    replies = [
        r
        for r in server_frames(ev, found.service.node)
        if (r.src_ip, r.src_port, r.dst_ip, r.dst_port)
        == (f.dst_ip, f.dst_port, f.src_ip, f.src_port)
    ]
    if not replies:
        return ["no frame of the server's on this connection to compare MACs with"]
    r = replies[0]
    if (r.src_mac, r.dst_mac) != (f.dst_mac, f.src_mac):
        return [
            f"MACs {f.src_mac}->{f.dst_mac}, but the server's reply went {r.src_mac}->{r.dst_mac}"
        ]
    return []


def _problems(topo: Topology, ev: Evidence, sc: Scenario, found: Scope, f: TcpFrame) -> list[str]:
    out = _mac_problems(ev, found, f)
    if f.ethertype != 0x0800:
        out.append(f"EtherType 0x{f.ethertype:04x}, not 0x0800 (IPv4)")
    if not f.ip_checksum_ok:
        out.append("IPv4 header checksum does not add up")
    want_ip = _server_address(topo, sc, f.src_ip)
    if f.dst_ip != want_ip:
        out.append(f"destination address {f.dst_ip}, not the server's {want_ip}")
    if f.dst_port != found.service.port:
        out.append(f"destination port {f.dst_port}, not the service's {found.service.port}")
    if f.tcp_checksum == "bad":
        out.append("TCP checksum neither valid nor the pseudo-header sum left for offload")
    if not _stream(sc).startswith(f.payload):
        out.append(
            f"payload {f.payload[:40]!r} is not what the client sends ({_stream(sc)[:40]!r})"
        )
    return out


def describe(f: TcpFrame) -> str:
    """The frame in one line, layer by layer."""
    cksum = {"valid": "valid", "offload": "pseudo-header sum (checksum offload)", "bad": "bad"}
    return (
        f"frame {f.index} of {f.capture}: Ethernet {f.src_mac}->{f.dst_mac} type "
        f"0x{f.ethertype:04x} | IPv4 {f.src_ip}->{f.dst_ip} header checksum "
        f"{'ok' if f.ip_checksum_ok else 'bad'} | TCP {f.src_port}->{f.dst_port} seq {f.seq} "
        f"{'+'.join(f.flags)} window {f.window} checksum {cksum[f.tcp_checksum]} | payload "
        f"{len(f.payload)} bytes {f.payload[:40]!r}"
    )


def frame_anatomy(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The scenario's first data segment, taken apart, agrees with the topology and the
    scenario at every layer: MACs of the two ends, IPv4 with a sound header checksum, the
    client's and the server's addresses, the service's port, a TCP checksum that is valid
    (or the kernel's offload form) and the bytes the client sends."""
    name = "frame anatomy"
    found = scope(topo, ev, sc)
    f = first_data_segment(ev, found)
    if f is None:
        return _none(name, found)
    problems = _problems(topo, ev, sc, found, f)
    detail = describe(f)
    return Check(name, not problems, "; ".join([*problems, detail]))


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _host(value: int, size: int) -> str:
    """How this machine holds ``value`` in memory, and the integer the wire's bytes of it
    would give if read in host order without ntohs/ntohl."""
    mem = value.to_bytes(size, sys.byteorder)
    misread = int.from_bytes(value.to_bytes(size, "big"), sys.byteorder)
    fn = "ntohs" if size == 2 else "ntohl"
    return f"in this {sys.byteorder}-endian host's memory {_hex(mem)}; read without {fn}: {misread}"


def byte_order(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """The server's port and address in the scenario's first data segment are written most
    significant byte first (network order, as htons/htonl make them): read from the
    capture's bytes, next to how the (little-endian) host holds the same numbers."""
    name = "network byte order"
    found = scope(topo, ev, sc)
    f = first_data_segment(ev, found)
    if f is None:
        return _none(name, found)
    port = found.service.port
    address = _server_address(topo, sc, f.src_ip) or ""
    wire_port = f.bytes_of(f.field("TCP", "destination port"))
    wire_addr = f.bytes_of(f.field("IPv4", "destination address"))
    problems = []
    if wire_port != struct.pack("!H", port):
        swapped = (
            " (its little-endian bytes: htons missing)"
            if wire_port == struct.pack("<H", port)
            else ""
        )
        problems.append(
            f"port bytes {_hex(wire_port)} read in network order are "
            f"{int.from_bytes(wire_port, 'big')}, not {port}{swapped}"
        )
    if address and wire_addr != IPv4Address(address).packed:
        problems.append(f"address bytes {_hex(wire_addr)} are not {address} in network order")
    number = int(IPv4Address(address or 0))
    detail = (
        f"frame {f.index} of {f.capture}: port {port} (0x{port:04x}) on the wire "
        f"{_hex(wire_port)}, {_host(port, 2)}; address {address} (0x{number:08x}) "
        f"on the wire {_hex(wire_addr)}, {_host(number, 4)}"
    )
    return Check(name, not problems, "; ".join([*problems, detail]))
