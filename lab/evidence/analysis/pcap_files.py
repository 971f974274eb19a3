"""Capture file formats: the link type and the raw records of a classic pcap or pcapng file.

Both are read here with ``struct`` from the file's bytes (bounded by
:data:`~lab.evidence.analysis.files.MAX_CAPTURE_BYTES`), so that damage is located: a record
cut short, a record or block that claims more bytes than a record can hold, block lengths
that disagree. The records before the damage are kept; reading stops at it, since the
framing after a bad length cannot be trusted. A record's claimed length is checked against
:data:`MAX_RECORD` before any slice is taken.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from lab.evidence.analysis.files import MAX_CAPTURE_BYTES, Damage, read_bytes
from lab.evidence.analysis.packet import CaptureError

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_PCAPNG_ORDERS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}

# tcpdump's largest snapshot length (MAXIMUM_SNAPLEN): no record it writes is longer.
MAX_RECORD = 262144
# A pcapng block holds one record plus its headers and options.
_MAX_BLOCK = MAX_RECORD + 65536


@dataclass(frozen=True)
class Record:
    time: float
    data: bytes
    wire_len: int


@dataclass
class Capture:
    """A capture file's records in file order; ``damage`` says where reading stopped or
    what was left out, empty for an intact file."""

    kind: str  # "pcap" or "pcapng"
    linktype: int
    records: list[Record] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)


def open_capture(path: Path) -> Capture:
    """Read ``path`` (a regular file, bounded); :class:`CaptureError` for a file that is not
    a capture at all, :class:`~lab.evidence.analysis.files.EvidenceFileError` for one that
    cannot be read."""
    return parse_capture(read_bytes(path, MAX_CAPTURE_BYTES), path)


def parse_capture(data: bytes, path: Path | str) -> Capture:
    if not data:
        raise CaptureError(path, "empty file (0 bytes): not even a capture file header")
    if data[:4] == PCAPNG_MAGIC:
        return _pcapng(data, path)
    if data[:4] not in PCAP_MAGICS:
        raise CaptureError(path, "not a pcap or pcapng file")
    if len(data) < 24:
        raise CaptureError(path, f"pcap file header cut short ({len(data)} of 24 bytes)")
    return _classic(data)


def _classic(data: bytes) -> Capture:
    order, unit = PCAP_MAGICS[data[:4]]
    network = struct.unpack_from(order + "I", data, 20)[0]
    cap = Capture("pcap", network & 0x0FFFFFFF)
    # Not the header's snapshot length: writers such as dpkt's put 1500 there whatever they
    # write, and a veth capture holds GSO segments longer than that. Wireshark, too, bounds
    # a record by the larger of the two.
    bound = MAX_RECORD
    offset, number, size = 24, 0, len(data)
    while offset < size:
        number += 1
        if size - offset < 16:
            cap.damage.append(
                Damage(f"record header cut short ({size - offset} of 16 bytes)", offset, number)
            )
            break
        sec, frac, caplen, wirelen = struct.unpack_from(order + "IIII", data, offset)
        if caplen > bound:
            problem = (
                f"claims {caplen} bytes, more than the {bound} a record can hold; "
                "the rest of the file is not read"
            )
            cap.damage.append(Damage(problem, offset, number))
            break
        start = offset + 16
        if start + caplen > size:
            problem = f"cut short: {size - start} of its {caplen} bytes"
            cap.damage.append(Damage(problem, offset, number))
            break
        cap.records.append(Record(sec + frac * unit, data[start : start + caplen], wirelen))
        offset = start + caplen
    return cap


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    unit: float


def _tsresol(options: bytes, order: str) -> float:
    """The interface's time unit from its if_tsresol option (10**-6 s by default)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(order + "HH", options, pos)
        value = options[pos + 4 : pos + 4 + length]
        if code == 0:
            break
        if code == 9 and len(value) == 1:
            exp = value[0] & 0x7F
            return 2.0**-exp if value[0] & 0x80 else 10.0**-exp
        pos += 4 + length + (-length % 4)
    return 1e-6


def _pcapng(data: bytes, path: Path | str) -> Capture:
    if len(data) < 12 or data[8:12] not in _PCAPNG_ORDERS:
        raise CaptureError(path, "pcapng section header cut short or without its byte-order magic")
    interfaces: list[_Interface] = []
    cap = Capture("pcapng", -1)
    offset, number, size = 0, 0, len(data)
    order = _PCAPNG_ORDERS[data[8:12]]
    while offset < size:
        if size - offset < 12:
            cap.damage.append(Damage(f"block header cut short ({size - offset} bytes)", offset))
            break
        btype = struct.unpack_from(order + "I", data, offset)[0]
        if data[offset : offset + 4] == PCAPNG_MAGIC:  # a new section may change byte order
            bom = data[offset + 8 : offset + 12]
            if bom not in _PCAPNG_ORDERS:
                cap.damage.append(Damage("section header without its byte-order magic", offset))
                break
            order, interfaces = _PCAPNG_ORDERS[bom], []
        blen = struct.unpack_from(order + "I", data, offset + 4)[0]
        problem = _block_problem(data, offset, blen, order)
        if problem:
            cap.damage.append(Damage(problem, offset, number + 1 if btype in (2, 3, 6) else None))
            break
        body = data[offset + 8 : offset + blen - 4]
        if btype == 1:
            interfaces.append(_interface(body, order))
            if cap.linktype < 0:
                cap.linktype = interfaces[-1].linktype
        elif btype in (2, 3, 6):
            number += 1
            record, why = _packet(btype, body, order, interfaces, cap.linktype)
            if record is not None:
                cap.records.append(record)
            else:
                cap.damage.append(Damage(why, offset, number))
        offset += blen
    if cap.linktype < 0:
        after = f" ({cap.damage[0]})" if cap.damage else ""
        raise CaptureError(path, f"pcapng file without an interface description block{after}")
    return cap


def _block_problem(data: bytes, offset: int, blen: int, order: str) -> str | None:
    if blen < 12 or blen % 4:
        return f"block claims a length of {blen} bytes, not a multiple of 4 of at least 12"
    if blen > _MAX_BLOCK:
        return f"block claims {blen} bytes, more than a block holding one record can be"
    if offset + blen > len(data):
        return f"block cut short: {len(data) - offset} of its {blen} bytes"
    trailer = struct.unpack_from(order + "I", data, offset + blen - 4)[0]
    if trailer != blen:
        return f"block length fields disagree ({blen} at its start, {trailer} at its end)"
    return None


def _interface(body: bytes, order: str) -> _Interface:
    if len(body) < 8:
        return _Interface(-1, 0, 1e-6)
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
    return _Interface(linktype, snaplen, _tsresol(body[8:], order))


def _packet(
    btype: int, body: bytes, order: str, interfaces: list[_Interface], linktype: int
) -> tuple[Record | None, str]:
    """One packet block as a Record, or why it is left out."""
    if btype == 3:  # simple packet block: interface 0, no time stamp
        if len(body) < 4 or not interfaces:
            return None, "simple packet block without its interface or length"
        wire = struct.unpack_from(order + "I", body)[0]
        caplen = min(wire, len(body) - 4, interfaces[0].snaplen or MAX_RECORD)
        return Record(0.0, body[4 : 4 + caplen], wire), ""
    head = 20
    if len(body) < head:
        return None, f"packet block cut short ({len(body)} of {head} header bytes)"
    if btype == 6:
        iface, hi, lo, caplen, wire = struct.unpack_from(order + "IIIII", body)
    else:  # obsolete packet block: 16-bit interface id and drop count
        iface, _drops, hi, lo, caplen, wire = struct.unpack_from(order + "HHIIII", body)
    if iface >= len(interfaces):
        return None, f"packet of interface {iface}, which no block described"
    if interfaces[iface].linktype != linktype:
        return None, f"packet of interface {iface}, link type {interfaces[iface].linktype}"
    if caplen > len(body) - head:
        return None, f"claims {caplen} bytes, its block holds {len(body) - head}"
    when = ((hi << 32) | lo) * interfaces[iface].unit
    return Record(when, body[head : head + caplen], wire), ""
