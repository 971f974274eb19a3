"""A captured frame taken apart, for the report: a hex view of its bytes coloured by
header (Ethernet, IPv4, TCP, payload) with each field's bytes marked, and beside it the
table of fields with the layer each belongs to (OSI 7 and TCP/IP 4); and the port and
address of that frame in network order next to the host's own order.

The frame is the one the ``frame-anatomy`` and ``byte-order`` claims read
(:func:`lab.verdict.anatomy.first_data_segment`). Style: ``assets/anatomy.css``; every
byte and field row has a ``<title>`` or class a test can find (``hx``, ``f-key``).
"""

from __future__ import annotations

import re
import sys
from ipaddress import IPv4Address

from lab.evidence.folder import Evidence
from lab.evidence.frames import LAYERS, Field, TcpFrame
from lab.i18n import t, t_or
from lab.report.markup import esc
from lab.spec.model import Scenario, Topology
from lab.verdict.anatomy import first_data_segment
from lab.verdict.scope import scope

# The fields the course points at, drawn outlined in the hex view.
KEY_FIELDS = {
    "destination MAC",
    "source MAC",
    "source address",
    "destination address",
    "source port",
    "destination port",
    "sequence number",
    "flags",
    "window",
    "checksum",
    "header checksum",
}
_PER_ROW = 16
_CLASS = {"Ethernet": "eth", "IPv4": "ip", "TCP": "tcp", "payload": "pay"}


def scenario_frame(ev: Evidence, topo: Topology, sc: Scenario) -> TcpFrame | None:
    return first_data_segment(ev, scope(topo, ev, sc))


def _layer_text(layer: str) -> str:
    osi, osi_name, tcpip = LAYERS[layer]
    return t("pic.layer", osi=osi, osi_name=_word(osi_name), tcpip=_word(tcpip))


_COUNTS = re.compile(r"\b(\d+) (bytes|words)\b")


def _value(text: str) -> str:
    """A field's value as the frame's reader wrote it ("5 words = 20 bytes"), its counts
    in the current language."""
    return _COUNTS.sub(lambda m: t(f"pic.n_{m.group(2)}", n=int(m.group(1))), text)


def _word(name: str) -> str:
    """A layer's, header's or field's name in the current language (as written if none)."""
    return t_or(f"pic.word.{name}", name)


def _owner(frame: TcpFrame) -> list[tuple[int, Field] | None]:
    """For each byte of the frame, its field and the field's number (None: Ethernet
    padding or bytes no header claims)."""
    out: list[tuple[int, Field] | None] = [None] * len(frame.data)
    for n, f in enumerate(frame.fields):
        for i in range(f.start, min(f.end, len(out))):
            out[i] = (n, f)
    return out


def _byte(i: int, b: int, owner: tuple[int, Field] | None) -> str:
    if owner is None:
        return f'<span class="hx pad" title="{esc(t("pic.byte_pad", i=i))}">{b:02x}</span>'
    n, f = owner
    key = " f-key" if f.name in KEY_FIELDS else ""
    shade = f" s{n % 2}"
    title = t(
        "pic.byte",
        i=i,
        layer=_word(f.layer),
        name=_word(f.name),
        value=_value(f.value),
        layers=_layer_text(f.layer),
    )
    return f'<span class="hx {_CLASS[f.layer]}{shade}{key}" title="{esc(title)}">{b:02x}</span>'


def hex_view(frame: TcpFrame) -> str:
    """The frame's bytes, 16 a row with their offsets, each coloured by its header."""
    owners = _owner(frame)
    rows = []
    for start in range(0, len(frame.data), _PER_ROW):
        cells = "".join(
            _byte(i, frame.data[i], owners[i])
            for i in range(start, min(start + _PER_ROW, len(frame.data)))
        )
        rows.append(f'<div class="hxrow"><span class="hxoff">{start:04x}</span>{cells}</div>')
    legend = "".join(
        f'<span class="hx {c} s0">{esc(_word(layer))}</span> {esc(_layer_text(layer))} '
        for layer, c in _CLASS.items()
    )
    return f'<div class="hexview">{"".join(rows)}<p class="hxlegend">{legend}</p></div>'


def field_table(frame: TcpFrame) -> str:
    rows = "".join(
        f'<tr class="{_CLASS[f.layer]}{" f-key" if f.name in KEY_FIELDS else ""}">'
        f"<td>{esc(_word(f.layer))}</td>"
        f"<td>{esc(LAYERS[f.layer][0])} {esc(_word(LAYERS[f.layer][1]))}</td>"
        f"<td>{esc(_word(LAYERS[f.layer][2]))}</td><td>{esc(_word(f.name))}</td>"
        f"<td>{f.start}–{f.end - 1}</td>"
        f"<td class=mono>{esc(_short_hex(frame.bytes_of(f)))}</td>"
        f"<td>{esc(_value(f.value))}</td></tr>"
        for f in frame.fields
    )
    heads = ("header", "osi", "tcpip", "field", "bytes", "hex", "value")
    head = "".join(f"<th>{esc(t('pic.fields.' + h))}</th>" for h in heads)
    return f'<table class="fields"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _short_hex(data: bytes) -> str:
    text = " ".join(f"{b:02x}" for b in data[:16])
    return text + (" …" if len(data) > 16 else "")


def anatomy_picture(ev: Evidence, topo: Topology, sc: Scenario) -> str:
    frame = scenario_frame(ev, topo, sc)
    if frame is None:
        return ""
    title = t("pic.frame", index=frame.index, capture=frame.capture, size=len(frame.data))
    return f"<h3>{esc(title)}</h3>" + hex_view(frame) + field_table(frame)


def _order_row(what: str, value: int, size: int, wire: bytes) -> str:
    memory = value.to_bytes(size, sys.byteorder)
    misread = int.from_bytes(wire, sys.byteorder)
    fn = "ntohs" if size == 2 else "ntohl"
    shown = str(value) if size == 2 else str(IPv4Address(value))
    return (
        f"<tr><td>{esc(what)}</td><td>{esc(shown)}</td><td class=mono>0x{value:0{size * 2}x}"
        f"</td><td class=mono>{esc(_short_hex(wire))}</td><td class=mono>"
        f"{esc(_short_hex(memory))}</td><td>{misread}</td><td>{esc(fn)}</td></tr>"
    )


def byte_order_picture(ev: Evidence, topo: Topology, sc: Scenario) -> str:
    """The server's port and address as the frame carries them and as this host keeps
    them."""
    frame = scenario_frame(ev, topo, sc)
    if frame is None:
        return ""
    port = frame.field("TCP", "destination port")
    addr = frame.field("IPv4", "destination address")
    port_wire, addr_wire = frame.bytes_of(port), frame.bytes_of(addr)
    rows = _order_row(t("pic.order.port"), int.from_bytes(port_wire, "big"), 2, port_wire)
    rows += _order_row(t("pic.order.address"), int.from_bytes(addr_wire, "big"), 4, addr_wire)
    order = t(f"detail.order.{sys.byteorder}")
    title = t("pic.order.title", index=frame.index, capture=frame.capture, order=order)
    heads = ("what", "value", "hex", "wire", "memory", "misread", "undone")
    head = "".join(f"<th>{esc(t('pic.order.' + h, order=order))}</th>" for h in heads)
    return (
        f"<h3>{esc(title)}</h3><table class=byteorder><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
