"""Pictures of what a socket is bound to: the server node's addresses and how a SYN to
each was answered (the ``bind-address`` claim), and the client ports among the kernel's
ephemeral range (the ``ephemeral-ports`` claim). Style: ``assets/anatomy.css``."""

from __future__ import annotations

from dataclasses import replace

from lab.evidence.folder import Evidence
from lab.i18n import t, t_or
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
        seen = t("sep.comma").join(
            f"{t_or('said.' + g, g)} x{got.count(g)}" for g in sorted(set(got))
        ) or t("pic.bind.no_syn")
        rows.append(
            f'<tr class="{"ok" if covers else "bad"}"><td>{esc(iface.network)}</td>'
            f"<td class=mono>{esc(ip)}:{service.port}</td>"
            f"<td>{esc(t('pic.bind.yes' if covers else 'pic.bind.no'))}</td>"
            f"<td>{esc(seen)}</td></tr>"
        )
    title = t("pic.bind.title", bind=service.bind, said=said.text())
    head = "".join(
        f"<th>{esc(t('pic.bind.' + h))}</th>" for h in ("network", "address", "covered", "answered")
    )
    return (
        f"<h3>{esc(title)}</h3><table class=binding><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
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
            f'y2="46"><title>{esc(t("pic.eph.port", node=node, port=p))}</title></line>'
            for p in ports
        )
        out.append(
            f'<svg class="chart eph" width="{width}" height="72" role="img">'
            f'<rect class="eph-all" x="10" y="26" width="{width - 20}" height="12"/>'
            f'<rect class="eph-range" x="{_x(low, width):.1f}" y="22" '
            f'width="{_x(high, width) - _x(low, width):.1f}" height="20">'
            f"<title>{esc(t('pic.eph.range', low=low, high=high))}</title></rect>{marks}"
            f'<text class="tick" x="10" y="62">0</text>'
            f'<text class="tick" x="{_x(low, width):.1f}" y="62">{low}</text>'
            f'<text class="tick" x="{_x(high, width):.1f}" y="62">{high}</text>'
            f'<text class="tick" x="{width - 10}" y="62">65535</text>'
            f'<text class="legend left" x="10" y="12">'
            f"{esc(t('pic.eph.legend', node=node, ports=ports, low=low, high=high))}</text></svg>"
        )
    if not out:
        return ""
    head = f"<h3>{esc(t('pic.eph.title'))}</h3>"
    return f"{head}<div class=scroll>{''.join(out)}</div>"
