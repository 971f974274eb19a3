"""The capture readers on damaged files: classic pcap and pcapng, each damage located by
record number and byte offset, the records before it kept; and the inputs the fuzz target
(tests/fuzz/fuzz_pcap.py) found."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest

from lab.errors import LabError
from lab.evidence.analysis.files import EvidenceFileError
from lab.evidence.analysis.pcap import LINKTYPE_ETHERNET, read_capture, read_packets
from lab.evidence.analysis.pcap_files import MAX_RECORD
from tests.analysis.conftest import Handshake, Wire, WireFactory, link_frame


def _handshake_pcap(wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path) -> Path:
    w = wire()
    tcp_handshake(w)
    return w.write(tmp_path / "hs.pcap")


def _pcapng(pcap: Path, out: Path) -> Path:
    reader = dpkt.pcap.Reader(pcap.open("rb"))
    with out.open("wb") as f:
        writer = dpkt.pcapng.Writer(f, linktype=reader.datalink())
        for ts, buf in reader:
            writer.writepkt(buf, ts=ts)
    return out


def test_pcapng_reads_as_the_same_packets_as_pcap(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    pcap = _handshake_pcap(wire, tcp_handshake, tmp_path)
    ng = read_capture(_pcapng(pcap, tmp_path / "hs.pcapng"))
    classic = read_capture(pcap)
    assert (ng.kind, ng.frames, ng.damage) == ("pcapng", 3, [])
    assert [(p.seq, p.flags, round(p.time, 6)) for p in ng.packets] == [
        (p.seq, p.flags, round(p.time, 6)) for p in classic.packets
    ]


def test_classic_record_longer_than_any_record_stops_reading_there(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    pcap = _handshake_pcap(wire, tcp_handshake, tmp_path)
    data = bytearray(pcap.read_bytes())
    second = 24 + 16 + struct.unpack_from("<I", data, 24 + 8)[0]
    data[second + 8 : second + 12] = struct.pack("<I", MAX_RECORD + 1)
    pcap.write_bytes(bytes(data))
    read = read_capture(pcap)
    assert read.frames == 1
    (damage,) = read.damage
    assert (damage.record, damage.offset) == (2, second)
    assert f"claims {MAX_RECORD + 1} bytes" in damage.problem


def test_pcapng_block_damage_is_located(
    wire: WireFactory, tcp_handshake: Handshake, tmp_path: Path
) -> None:
    pcap = _handshake_pcap(wire, tcp_handshake, tmp_path)
    ng = _pcapng(pcap, tmp_path / "hs.pcapng")
    data = ng.read_bytes()
    # The last block's trailing length no longer matches its leading one.
    last = len(data) - struct.unpack_from("<I", data, len(data) - 4)[0]
    ng.write_bytes(data[:-4] + struct.pack("<I", 1234))
    read = read_capture(ng)
    assert read.frames == 2
    (damage,) = read.damage
    assert (damage.record, damage.offset) == (3, last)
    assert "length fields disagree" in damage.problem
    # A block claiming 4 GB is refused before anything is sliced.
    ng.write_bytes(data[: last + 4] + struct.pack("<I", 0xFFFFFFFC) + data[last + 8 :])
    (damage,) = read_capture(ng).damage
    assert damage.offset == last and "claims 4294967292 bytes" in damage.problem


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty file"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap file header cut short (6 of 24 bytes)"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00", "pcapng section header cut short"),
        (b"GET / HTTP/1.1\r\n", "not a pcap or pcapng file"),
    ],
)
def test_file_that_is_no_capture_is_a_lab_error_naming_it(
    tmp_path: Path, data: bytes, why: str
) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    with pytest.raises(EvidenceFileError) as info:
        read_capture(path)
    assert isinstance(info.value, LabError)
    assert str(info.value) == f"{path}: {info.value.problem}" and why in info.value.problem


# -- inputs found by tests/fuzz/fuzz_pcap.py -----------------------------------------------------


def test_tcp_option_cut_short_leaves_the_options_unread(wire: WireFactory, tmp_path: Path) -> None:
    # TIMESTAMP's kind as the header's last byte, with no length byte: dpkt's option
    # parser marks that with None, which was unpacked as (kind, value): TypeError.
    w = wire()
    w.tcp("c", "S", 1000, opts=b"\x02\x04\x05\xb4\x01\x01\x01\x08")
    (packet,) = read_packets(w.write(tmp_path / "opt.pcap"))
    assert packet.options is not None and packet.options.mss == 1460
    assert packet.options.timestamp is None


def test_record_longer_than_the_header_snaplen_is_not_damage(tmp_path: Path) -> None:
    # dpkt's writer puts 1500 in the header whatever it writes, and a veth capture holds
    # GSO segments longer than the MTU: only a length no record can have is damage.
    w = Wire()
    w.tcp("c", "PA", 1000, 1, data=b"x" * 3000)
    path = tmp_path / "gso.pcap"
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, snaplen=1500)
        for frame in w.frames:
            writer.writepkt(link_frame(frame, LINKTYPE_ETHERNET), ts=frame.time)
    read = read_capture(path)
    assert read.damage == [] and read.packets[0].payload_len == 3000
