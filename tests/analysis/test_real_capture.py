"""The decoder against tshark on a real loopback exchange captured by tcpdump, as Ethernet
(``-i lo``), SLL (``-i any``) and SLL2 (``-i any -y LINUX_SLL2``)."""

from __future__ import annotations

import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.evidence.analysis import pcap_ok, read_packets, tcp_connections
from lab.evidence.analysis.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    link_type,
)
from tests.conftest import require

CAPTURES = {
    "eth": (["-i", "lo"], LINKTYPE_ETHERNET),
    "sll": (["-i", "any", "-y", "LINUX_SLL"], LINKTYPE_LINUX_SLL),
    "sll2": (["-i", "any"], LINKTYPE_LINUX_SLL2),  # tcpdump 4.99 default for -i any
}
FIELDS = [
    "frame.number",
    "tcp.srcport",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.flags",
    "tcp.len",
    "tcp.window_size_value",
    "tcp.seq",
    "tcp.ack",
    "tcp.options.mss_val",
    "tcp.options.wscale.shift",
]


def start_tcpdump(iface_args: list[str], path: Path, port: int) -> subprocess.Popen[bytes]:
    # The lab's own capture command (no --immediate-mode: on "any" it makes the kernel drop
    # packets here). Packets then reach the file when a ring block times out (about 1 s),
    # so the fixture polls the file before stopping tcpdump.
    argv = [
        "tcpdump",
        *iface_args,
        "-w",
        str(path),
        "-U",
        "-s",
        "262144",
        "-Z",
        "root",
        "-c",
        "100",
        "tcp",
        "port",
        str(port),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    # tcpdump says "listening on ..." once the capture is live.
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    deadline, seen = time.monotonic() + 10, b""
    while b"listening on" not in seen:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"tcpdump did not start: {seen.decode(errors='replace')}")
        if sel.select(timeout=0.5):
            seen += proc.stderr.read1(4096)  # type: ignore[attr-defined]
    sel.close()
    return proc


def exchange(port_holder: socket.socket) -> None:
    """Client sends a line, the server echoes it upper-cased, the client closes first."""
    port = port_holder.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    server, _ = port_holder.accept()
    with client, server:
        client.sendall(b"hello lab\n")
        server.sendall(server.recv(100).upper())
        assert client.recv(100) == b"HELLO LAB\n"
        client.shutdown(socket.SHUT_WR)
        assert server.recv(100) == b""
    # Leaving the block closes the server side too: its FIN is answered before tcpdump stops.


def wait_for_close(path: Path) -> None:
    """Poll the capture (written packet by packet, -U) until it holds the final ACK."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        conns = tcp_connections(read_packets(path)) if path.stat().st_size > 24 else []
        if conns and conns[0].close.complete:
            return
        time.sleep(0.05)


def tshark_rows(path: Path) -> dict[int, list[str]]:
    argv = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for f in FIELDS:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    rows = {}
    for line in out.splitlines():
        cols = line.split("|")
        rows[int(cols[0])] = cols
    return rows


@pytest.fixture
def captures(root: None, tmp_path: Path) -> Iterator[dict[str, Path]]:
    require(shutil.which("tshark") is not None, "needs tshark on PATH")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    paths = {name: tmp_path / f"{name}.pcap" for name in CAPTURES}
    procs = []
    try:
        for name, (args, _) in CAPTURES.items():
            procs.append(start_tcpdump(args, paths[name], port))
        exchange(listener)
        for path in paths.values():
            wait_for_close(path)
    finally:
        listener.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    yield paths


def test_decoder_matches_tshark_and_the_exchange_is_understood(
    captures: dict[str, Path],
) -> None:
    for name, path in captures.items():
        assert link_type(path) == CAPTURES[name][1]
        ok, why = pcap_ok(path, min_packets=1)
        assert ok, why
        packets = read_packets(path)
        rows = tshark_rows(path)
        assert sorted(rows) == [p.index for p in packets]
        conns = tcp_connections(packets)
        assert len(conns) == 1, name
        conn = conns[0]
        by_index = {s.index: s for s in conn.segments}
        for p in packets:
            _, sport, seq, ack, flags, tlen, win, rseq, rack, mss, wscale = rows[p.index]
            assert (p.src_port, p.seq, p.ack) == (int(sport), int(seq), int(ack)), (name, p)
            assert (p.tcp_flags, p.payload_len, p.window) == (int(flags, 16), int(tlen), int(win))
            assert p.options is not None
            assert p.options.mss == (int(mss) if mss else None)
            assert p.options.wscale == (int(wscale) if wscale else None)
            seg = by_index.get(p.index)
            if seg is None:  # a second sighting of the same packet on -i any
                continue
            assert seg.relative_seq == int(rseq)
            if seg.has("ACK"):
                assert seg.relative_ack == int(rack)
        hs = conn.handshake
        assert hs.ok, hs.reason
        assert hs.client_mss == 65495  # loopback MTU 65536 - 40
        data = [(s.sender, s.payload) for s in conn.data_segments]
        assert data == [("client", b"hello lab\n"), ("server", b"HELLO LAB\n")]
        assert conn.close.kind in {"four-way", "three-way"}
        assert conn.close.first_fin_by == "client" and conn.close.complete
        assert conn.retransmissions == ()
