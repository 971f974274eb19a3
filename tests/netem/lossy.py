"""A real capture with real retransmissions, made without netem (which a kernel may lack):
a TCP transfer over loopback in a namespace of our own, where iptables drops every Nth
segment after the capture has seen it. The sender's kernel then retransmits as it would
on a lossy link (on a timeout, or after duplicate ACKs), and the capture holds both sends."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

PORT = 5001

SERVER = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
    c, _ = s.accept()
    total = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        total += len(b)
    c.sendall(str(total).encode())
    c.close()
    """
)

CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # One segment per write, each the only one in flight: a lost one is resent on the
    # sender's timer (tail loss probe or RTO), as on an idle lossy link.
    for _ in range(int(sys.argv[2])):
        c.sendall(b"x" * 1000)
        time.sleep(float(sys.argv[3]))
    c.shutdown(socket.SHUT_WR)
    print(c.recv(100).decode())
    """
)


def _ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=check
    )


def lossy_capture(out: Path, *, every: int = 5, chunks: int = 16, pace: float = 0.3) -> Path:
    """Capture a transfer of ``chunks`` KB where every ``every``-th data segment to the
    server is dropped after the capture saw it; the pcap's path."""
    ns = f"slabtest-{secrets.token_hex(3)}"
    pcap = out / "lossy.pcap"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    dump: subprocess.Popen[bytes] | None = None
    try:
        _ns(ns, "ip", "link", "set", "lo", "up")
        # Data segments only (the SYN and pure ACKs pass): a loss the sender must repair.
        _ns(ns, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(PORT),
            "-m", "length", "--length", "200:65535",
            "-m", "statistic", "--mode", "nth", "--every", str(every), "--packet", "3",
            "-j", "DROP")  # fmt: skip
        dump = subprocess.Popen(
            ["ip", "netns", "exec", ns, "tcpdump", "-i", "lo", "-w", str(pcap), "-U",
             "--immediate-mode", "-n", "-Z", "root", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not pcap.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER,
                                   str(PORT)])  # fmt: skip
        time.sleep(0.3)
        done = _ns(ns, sys.executable, "-c", CLIENT, str(PORT), str(chunks), str(pace))
        assert done.stdout.strip() == str(chunks * 1000), done
        server.wait(timeout=30)
        time.sleep(0.3)
    finally:
        if dump is not None:
            dump.terminate()
            dump.communicate(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert os.path.getsize(pcap) > 0
    return pcap
