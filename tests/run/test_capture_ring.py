"""The capture's kernel ring, with the real tcpdump: a burst that arrives while tcpdump
cannot run (stopped here, as a busy machine's scheduler does for a while) is kept whole
in the ring the lab gives it, and tcpdump's own default ring, 16 packets deep here, drops most
of it and says so in the log that the evidence step reads."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import dpkt
import pytest

from lab.evidence.folder import KERNEL_DROPS
from lab.run.collect import tcpdump_argv
from lab.spec.model import LEAST_RING_KIB, Capture

# Datagrams. On loopback each passes the ring twice (out and in; libpcap keeps one): 240
# slots. A slot holds one packet of up to 64 KiB, 128 KiB with its header: the lab's 8 MiB
# hold 64 of them, tcpdump's default 2 MiB hold 16.
BURST = 30


@pytest.fixture
def netns(root: None) -> Iterator[str]:
    name = f"slab-ringtest-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _burst_while_stopped(netns: str, ring_kib: int, folder: Path) -> tuple[int, int]:
    """Packets in the pcap, and the drops tcpdump said, for a burst sent while it is
    stopped."""
    pcap, log = folder / f"ring{ring_kib}.pcap", folder / f"ring{ring_kib}.log"
    argv = tcpdump_argv("lo", Capture(filter="udp"), ring_kib, PurePosixPath(pcap))
    with log.open("wb") as err:
        proc = subprocess.Popen(["ip", "netns", "exec", netns, *argv], stderr=err)
    try:
        deadline = time.monotonic() + 20
        while b"listening on" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGSTOP)
        send = [
            "ip", "netns", "exec", netns, "python3", "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for i in range({BURST}): s.sendto(b'x' * 100, ('127.0.0.1', 9))",
        ]  # fmt: skip
        subprocess.run(send, check=True)
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    with pcap.open("rb") as f:
        kept = sum(1 for _ in dpkt.pcap.Reader(f))
    return kept, sum(int(n) for n in KERNEL_DROPS.findall(log.read_text()))


def test_the_lab_ring_keeps_a_burst_that_tcpdump_default_ring_drops(
    netns: str, tmp_path: Path
) -> None:
    ring = Capture().ring_kib(3)  # the default topology's three interfaces
    assert ring == 8 * 1024
    kept, dropped = _burst_while_stopped(netns, ring, tmp_path)
    assert (kept, dropped) == (BURST, 0)
    kept, dropped = _burst_while_stopped(netns, LEAST_RING_KIB, tmp_path)
    assert dropped > 0 and kept < BURST


def test_a_large_lab_shares_one_gibibyte_of_rings() -> None:
    cap = Capture()
    assert cap.ring_kib(128) == 8 * 1024
    assert cap.ring_kib(256) == 4 * 1024
    assert cap.ring_kib(1000) == LEAST_RING_KIB  # never below tcpdump's own default
    assert Capture(buffer=1).ring_kib(3) == 1024  # a ring asked smaller is given
