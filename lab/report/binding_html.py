"""Pictures of what a socket is bound to: the server node's addresses and how a SYN to
each was answered (the ``bind-address`` claim), and the client ports among the kernel's
ephemeral range (the ``ephemeral-ports`` claim). Style: ``assets/anatomy.css``."""

from __future__ import annotations

from dataclasses import replace

from lab.evidence.folder import Evidence
from lab.report.markup import esc
from lab.spec.model import Scenario, Topology
from lab.verdict.binding import answer, listener, port_range
from lab.verdict.scope import scope, tcp_on

_MAX_PORT = 65535


def bind_picture(ev: Evidence, topo: Topology, sc: Scenario) -> str:
    """A row per address of the server's node: whether the listening socket covers it and
    how the scenario's SYNs to it were answered."""
    service = topo.service(sc.service)
    found = scope(topo, ev, sc)
    found = replace(found, service=replace(found.service, port=topo.scenario_port(sc)))
    conns = tcp_on(ev, service.node, found)
    bound, said = listener(ev, service.node, service.port)
    rows = []
    for iface in topo.node(service.node).interfaces:
        ip = str(iface.address)
        got = [answer(c) for c in conns if c.server.ip == ip]
        covers = bound is not None and bound in ("0.0.0.0", ip)
        seen = ", ".join(f"{g} x{got.count(g)}" for g in sorted(set(got))) or "no SYN"
        rows.append(
            f'<tr class="{"ok" if covers else "bad"}"><td>{esc(iface.network)}</td>'
            f"<td class=mono>{esc(ip)}:{service.port}</td>"
            f"<td>{'yes' if covers else 'no'}</td><td>{esc(seen)}</td></tr>"
        )
    return (
        f"<h3>Bound to {esc(service.bind)} ({esc(said.text())})</h3>"
        "<table class=binding><thead><tr>"
        "<th>network</th><th>server address</th><th>covered by the listening socket</th>"
        f"<th>the scenario's SYNs answered by</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table>"
    )


def _x(port: int, width: int) -> float:
    return 10 + (width - 20) * port / _MAX_PORT


def ephemeral_picture(ev: Evidence, topo: Topology, sc: Scenario) -> str:
    """The port space 0-65535 with each client node's ephemeral range shaded and the
    scenario's client ports (from the server's capture) marked in it."""
    found = scope(topo, ev, sc)
    conns = tcp_on(ev, found.service.node, found)
    width, out = 760, []
    for node in sc.clients:
        span = port_range(ev, node)
        ips = {str(i.address) for i in topo.node(node).interfaces}
        ports = sorted(c.client.port for c in conns if c.client.ip in ips)
        if span is None:
            continue
        low, high = span
        marks = "".join(
            f'<line class="eph-port" x1="{_x(p, width):.1f}" y1="18" x2="{_x(p, width):.1f}" '
            f'y2="46"><title>{esc(node)} port {p}</title></line>'
            for p in ports
        )
        out.append(
            f'<svg class="chart eph" width="{width}" height="72" role="img">'
            f'<rect class="eph-all" x="10" y="26" width="{width - 20}" height="12"/>'
            f'<rect class="eph-range" x="{_x(low, width):.1f}" y="22" '
            f'width="{_x(high, width) - _x(low, width):.1f}" height="20"><title>ephemeral range '
            f"{low}-{high}</title></rect>{marks}"
            f'<text class="tick" x="10" y="62">0</text>'
            f'<text class="tick" x="{_x(low, width):.1f}" y="62">{low}</text>'
            f'<text class="tick" x="{_x(high, width):.1f}" y="62">{high}</text>'
            f'<text class="tick" x="{width - 10}" y="62">65535</text>'
            f'<text class="legend left" x="10" y="12">{esc(node)}: ports {esc(ports)} in '
            f"ip_local_port_range {low}-{high}</text></svg>"
        )
    if not out:
        return ""
    head = "<h3>Client ports in the kernel's ephemeral range</h3>"
    return f"{head}<div class=scroll>{''.join(out)}</div>"
