"""Capture file formats: the link type and the raw records of a classic pcap or pcapng file."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dpkt

from lab.evidence.analysis.packet import CaptureError

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


@dataclass(frozen=True)
class Record:
    time: float
    data: bytes
    wire_len: int


def _read_classic(f: object, head: bytes) -> tuple[int, Iterator[Record], list[str]]:
    """Classic pcap: header already read (24 bytes). Problems found go into the list."""
    order, unit = PCAP_MAGICS[head[:4]]
    linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
    problems: list[str] = []
    reader = f.read  # type: ignore[attr-defined]

    def records() -> Iterator[Record]:
        while True:
            rec = reader(16)
            if not rec:
                return
            if len(rec) < 16:
                problems.append("truncated last record header")
                return
            sec, frac, caplen, wirelen = struct.unpack(order + "IIII", rec)
            data = reader(caplen)
            if len(data) < caplen:
                problems.append("truncated last record")
                return
            yield Record(sec + frac * unit, data, wirelen)

    return linktype, records(), problems


def _read_pcapng(path: Path) -> tuple[int, Iterator[Record], list[str]]:
    f = path.open("rb")
    try:
        reader = dpkt.pcapng.Reader(f)
    except (ValueError, dpkt.UnpackError) as exc:
        f.close()
        raise CaptureError(f"{path}: unreadable pcapng ({exc})") from exc
    problems: list[str] = []

    def records() -> Iterator[Record]:
        try:
            for ts, buf in reader:
                yield Record(float(ts), bytes(buf), len(buf))
        except (dpkt.UnpackError, struct.error) as exc:
            problems.append(f"unreadable block ({exc})")
        finally:
            f.close()

    return int(reader.datalink()), records(), problems


def open_capture(path: Path) -> tuple[int, Iterator[Record], list[str]]:
    with path.open("rb") as probe:
        head = probe.read(24)
    if head[:4] == PCAPNG_MAGIC:
        return _read_pcapng(path)
    if len(head) < 24 or head[:4] not in PCAP_MAGICS:
        raise CaptureError(f"{path}: not a pcap or pcapng file")
    f = path.open("rb")
    f.read(24)
    linktype, recs, problems = _read_classic(f, head)

    def closing() -> Iterator[Record]:
        try:
            yield from recs
        finally:
            f.close()

    return linktype, closing(), problems
