"""A frame taken apart field by field (lab.evidence.frames): offsets as RFC 791/793 draw
the headers, and the three forms of a captured TCP checksum. Frames made with dpkt in
memory: pure logic, no network."""

from __future__ import annotations

import struct

import dpkt

from lab.evidence.frames import LAYERS, take_apart


def _frame(payload: bytes = b"hello\n") -> dpkt.ethernet.Ethernet:
    tcp = dpkt.tcp.TCP(sport=40000, dport=9999, seq=7, ack=9, flags=0x18, win=63, data=payload)
    ip = dpkt.ip.IP(src=bytes([10, 77, 1, 11]), dst=bytes([10, 77, 1, 10]), p=6, ttl=64, data=tcp)
    ip.len = len(ip)
    eth = dpkt.ethernet.Ethernet(
        src=b"\x02\0\0\0\0\x0b", dst=b"\x02\0\0\0\0\x0a", type=0x0800, data=ip
    )
    return dpkt.ethernet.Ethernet(bytes(eth))  # checksums computed


def test_every_field_sits_at_its_offset_with_its_layer() -> None:
    f = take_apart("c.pcap", 1, bytes(_frame()) + b"\0" * 6)  # with Ethernet padding
    assert f is not None
    where = {(x.layer, x.name): (x.start, x.end, x.value) for x in f.fields}
    assert where["Ethernet", "destination MAC"] == (0, 6, "02:00:00:00:00:0a")
    assert where["IPv4", "source address"] == (26, 30, "10.77.1.11")
    assert where["TCP", "destination port"] == (36, 38, "9999")
    assert where["TCP", "flags"] == (47, 48, "PSH+ACK")
    assert where["payload", "data"][:2] == (54, 60)  # the padding is not payload
    assert f.bytes_of(f.field("TCP", "destination port")) == b"\x27\x0f"
    assert (f.payload, f.ip_checksum_ok, f.tcp_checksum) == (b"hello\n", True, "valid")
    assert {x.layer for x in f.fields} == set(LAYERS)


def test_checksum_offload_form_and_a_bad_checksum_are_told_apart() -> None:
    raw = bytearray(bytes(_frame()))
    pseudo = raw[26:34] + struct.pack("!BBH", 0, 6, len(raw) - 34)
    total = sum(struct.unpack("!6H", pseudo))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    raw[50:52] = struct.pack("!H", total)  # what the kernel leaves for the card to finish
    f = take_apart("c.pcap", 1, bytes(raw))
    assert f is not None and f.tcp_checksum == "offload"
    raw[50:52] = struct.pack("!H", total ^ 0x0101)
    f = take_apart("c.pcap", 1, bytes(raw))
    assert f is not None and f.tcp_checksum == "bad"
    raw[22] -= 1  # the TTL, its header checksum left as it was
    f = take_apart("c.pcap", 1, bytes(raw))
    assert f is not None and not f.ip_checksum_ok


def test_frames_that_are_not_whole_ipv4_tcp_are_not_taken_apart() -> None:
    raw = bytes(_frame())
    assert take_apart("c.pcap", 1, raw[:40]) is None  # cut short
    assert take_apart("c.pcap", 1, raw[:12] + b"\x86\xdd" + raw[14:]) is None  # not IPv4
    udp = bytearray(raw)
    udp[23] = 17
    assert take_apart("c.pcap", 1, bytes(udp)) is None
