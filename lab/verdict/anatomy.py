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
from lab.i18n import Msg, join, msg
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
    said = msg(
        "detail.anatomy.none",
        ips=sorted(found.client_ips),
        ports=sorted(found.ports),
        node=found.service.node,
    )
    return Check.said(name, False, said)


def _stream(sc: Scenario) -> bytes:
    """What the scenario's line client writes on each connection."""
    return "".join(f"{line}\n" for line in sc.send).encode() * sc.repeat


def _server_address(topo: Topology, sc: Scenario, client_ip: str) -> str | None:
    service = topo.service(sc.service)
    for node in sc.clients:
        if client_ip in {str(i.address) for i in topo.node(node).interfaces}:
            return str(topo.target_address(service, node))
    return None


def _mac_problems(ev: Evidence, found: Scope, f: TcpFrame) -> list[Msg]:
    """The frame's MACs are the two ends' own: the server's replies on the connection come
    from the destination MAC and go to the source MAC."""
    replies = [
        r
        for r in server_frames(ev, found.service.node)
        if (r.src_ip, r.src_port, r.dst_ip, r.dst_port)
        == (f.dst_ip, f.dst_port, f.src_ip, f.src_port)
    ]
    if not replies:
        return [msg("said.no frame of the server's on this connection to compare MACs with")]
    r = replies[0]
    if (r.src_mac, r.dst_mac) != (f.dst_mac, f.src_mac):
        sent, back = f"{f.src_mac}->{f.dst_mac}", f"{r.src_mac}->{r.dst_mac}"
        return [msg("detail.anatomy.macs", sent=sent, back=back)]
    return []


def _problems(topo: Topology, ev: Evidence, sc: Scenario, found: Scope, f: TcpFrame) -> list[Msg]:
    out = _mac_problems(ev, found, f)
    if f.ethertype != 0x0800:
        out.append(msg("detail.anatomy.ethertype", type=f.ethertype))
    if not f.ip_checksum_ok:
        out.append(msg("said.IPv4 header checksum does not add up"))
    want_ip = _server_address(topo, sc, f.src_ip)
    if f.dst_ip != want_ip:
        out.append(msg("detail.anatomy.address", ip=f.dst_ip, want=want_ip))
    if f.dst_port != found.service.port:
        out.append(msg("detail.anatomy.port", port=f.dst_port, want=found.service.port))
    if f.tcp_checksum == "bad":
        out.append(
            msg("said.TCP checksum neither valid nor the pseudo-header sum left for offload")
        )
    if not _stream(sc).startswith(f.payload):
        got, want = repr(f.payload[:40]), repr(_stream(sc)[:40])
        out.append(msg("detail.anatomy.payload", got=got, want=want))
    return out


def describe(f: TcpFrame) -> Msg:
    """The frame in one line, layer by layer."""
    return msg(
        "detail.anatomy.frame",
        index=f.index,
        capture=f.capture,
        macs=f"{f.src_mac}->{f.dst_mac}",
        type=f.ethertype,
        ips=f"{f.src_ip}->{f.dst_ip}",
        ip_ok=msg("badge.ok" if f.ip_checksum_ok else "badge.bad"),
        ports=f"{f.src_port}->{f.dst_port}",
        seq=f.seq,
        flags="+".join(f.flags),
        window=f.window,
        cksum=msg(f"detail.anatomy.cksum.{f.tcp_checksum}"),
        size=len(f.payload),
        payload=repr(f.payload[:40]),
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
    said = msg("detail.all", items=join([*problems, describe(f)]))
    return Check.said(name, not problems, said)


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _host(value: int, size: int) -> Msg:
    """How this machine holds ``value`` in memory, and the integer the wire's bytes of it
    would give if read in host order without ntohs/ntohl."""
    mem = value.to_bytes(size, sys.byteorder)
    misread = int.from_bytes(value.to_bytes(size, "big"), sys.byteorder)
    fn = "ntohs" if size == 2 else "ntohl"
    order = msg(f"detail.order.{sys.byteorder}")
    return msg("detail.order.host", order=order, mem=_hex(mem), fn=fn, misread=misread)


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
    problems: list[Msg] = []
    if wire_port != struct.pack("!H", port):
        swapped = msg("detail.order.swapped") if wire_port == struct.pack("<H", port) else ""
        problems.append(
            msg(
                "detail.order.port",
                wire=_hex(wire_port),
                read=int.from_bytes(wire_port, "big"),
                port=port,
                swapped=swapped,
            )
        )
    if address and wire_addr != IPv4Address(address).packed:
        problems.append(msg("detail.order.address", wire=_hex(wire_addr), address=address))
    number = int(IPv4Address(address or 0))
    detail = msg(
        "detail.order.ok",
        index=f.index,
        capture=f.capture,
        port=port,
        wire_port=_hex(wire_port),
        host_port=_host(port, 2),
        address=address,
        number=number,
        wire_addr=_hex(wire_addr),
        host_addr=_host(number, 4),
    )
    return Check.said(name, not problems, msg("detail.all", items=join([*problems, detail])))
