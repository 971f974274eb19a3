"""The topology as a picture: networks as horizontal bars, hosts as boxes hanging from
their network (above the first bar, below the others), routers and other multi-homed
nodes between the bars of the networks they join, drawn in a different colour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lab.i18n import t
from lab.report.markup import esc
from lab.run.record import NodeRecord
from lab.spec.model import Node, Topology

_BOX_W, _COL_W, _BAR_H = 170, 190, 14
_MAX_COLS = 6

# A row of the picture, top to bottom: a network (its bar), or up to _MAX_COLS nodes.
Row = str | list[Node]


@dataclass
class _Drawing:
    """The picture as it is laid out, row by row, from the top."""

    y: int = 16
    boxes: list[str] = field(default_factory=list)
    bars: list[str] = field(default_factory=list)
    bar_y: dict[str, int] = field(default_factory=dict)
    # node -> (x centre, top, bottom)
    centers: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def topology_svg(topology: Topology, nodes_info: Mapping[str, NodeRecord]) -> str:
    """The picture in a scrolling ``<div>``; ``nodes_info`` (the run's nodes) gives each
    node's interface names and, for ssh runs, its machine."""
    rows = _rows(topology)
    widest = max([len(r) for r in rows if isinstance(r, list)] + [1])
    width = max(40 + _COL_W * min(_MAX_COLS, widest), 560)
    drawing = _Drawing()
    for row in rows:
        if isinstance(row, str):
            _draw_bar(drawing, topology, row, width)
        else:
            _draw_nodes(drawing, topology, row, nodes_info)
    y = drawing.y
    svg = (
        f"<svg class=topo width={width} height={y} "
        f'viewBox="0 0 {width} {y}" role=img aria-label="{esc(t("fig.topology_label"))}">'
        + "".join(_links(drawing, topology))
        + "".join(drawing.bars)
        + "".join(drawing.boxes)
        + "</svg>"
    )
    return f"<div class=scroll>{svg}</div>"


def _rows(topology: Topology) -> list[Row]:
    nets = [n.name for n in topology.networks]
    net_index = {name: i for i, name in enumerate(nets)}
    single = {
        i: [n for n in topology.nodes if len(n.interfaces) == 1 and net_index[n.networks[0]] == i]
        for i in range(len(nets))
    }
    multi = [n for n in topology.nodes if len(n.interfaces) != 1]
    rows: list[Row] = []
    for i, net in enumerate(nets):
        between = [n for n in multi if n.interfaces and max(net_index[x] for x in n.networks) == i]
        if i == 0:
            rows += _chunks(single[0])
        elif between:
            rows += _chunks(between)
        rows.append(net)
        if i > 0:
            rows += _chunks(single[i])
    rows += _chunks([n for n in multi if not n.interfaces])
    return rows


def _chunks(items: Sequence[Node]) -> list[list[Node]]:
    return [list(items[i : i + _MAX_COLS]) for i in range(0, len(items), _MAX_COLS)]


def _draw_bar(drawing: _Drawing, topology: Topology, name: str, width: int) -> None:
    network = topology.network(name)
    y = drawing.y
    drawing.bar_y[name] = y + _BAR_H // 2
    drawing.bars.append(
        f"<rect class=net x=10 y={y} width={width - 20} height={_BAR_H} rx=7 />"
        f"<text class=netlabel x=18 y={y + _BAR_H + 14}>{esc(network.name)} "
        f"{esc(network.subnet)}</text>"
    )
    drawing.y += _BAR_H + 40


def _draw_nodes(
    drawing: _Drawing,
    topology: Topology,
    row: Sequence[Node],
    nodes_info: Mapping[str, NodeRecord],
) -> None:
    height = 0
    for col, node in enumerate(row):
        info = nodes_info.get(node.name)
        text = _node_lines(node, topology, info.interfaces if info is not None else {})
        if info is not None and info.host:
            text.insert(0, f"on {info.host}")
        h = 30 + 15 * len(text)
        height = max(height, h)
        x = 20 + col * _COL_W
        drawing.boxes.append(_box(node, x, drawing.y, h, text))
        drawing.centers[node.name] = (x + _BOX_W // 2, drawing.y, drawing.y + h)
    drawing.y += height + 30


def _node_lines(node: Node, topology: Topology, ifnames: Mapping[str, str]) -> list[str]:
    lines = []
    for iface in node.interfaces:
        name = ifnames.get(iface.network)
        lines.append(f"{iface.address}" + (f" ({name})" if name else ""))
    services = [
        f"{s.name} :{s.port}/{s.protocol}" for s in topology.services if s.node == node.name
    ]
    return lines + services


def _box(node: Node, x: int, y: int, h: int, text: Sequence[str]) -> str:
    cls = "router" if node.router else ("multi" if len(node.interfaces) > 1 else "host")
    tspans = "".join(
        f"<text class=addr x={x + 8} y={y + 38 + 15 * k}>{esc(t)}</text>"
        for k, t in enumerate(text)
    )
    tag = " (router)" if node.router else ""
    return (
        f"<g class={cls}><rect x={x} y={y} width={_BOX_W} height={h} rx=6 />"
        f"<text class=name x={x + 8} y={y + 19}>{esc(node.name)}{esc(tag)}</text>"
        f"{tspans}</g>"
    )


def _links(drawing: _Drawing, topology: Topology) -> list[str]:
    """A vertical line from each box to the bar of each network its node is on."""
    lines = []
    for node in topology.nodes:
        if node.name not in drawing.centers:
            continue
        cx, top, bottom = drawing.centers[node.name]
        for net in node.networks:
            by = drawing.bar_y.get(net)
            if by is None:
                continue
            y1, y2 = (bottom, by) if by > bottom else (top, by)
            lines.append(f"<line class=link x1={cx} y1={y1} x2={cx} y2={y2} />")
    return lines
