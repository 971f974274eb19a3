"""Drive a user's client program like ``str_cli``: lines to its stdin, replies from stdout.

    python3 -m lab.programs.userclient --host H --port P --send LINE... [--count N]
        [--hold S] [--timeout S] [--protocol tcp|udp] --name NAME -- USERPROG-ARGV...

USERPROG-ARGV is the whole ``lab.programs.userprog`` command that starts the program
(bounded and unprivileged). ``--count`` copies run at once. Each copy gets one ``--send``
line on its stdin at a time and has ``--timeout`` seconds to print its reply line on
stdout; after the last reply and ``--hold`` seconds its stdin is closed and it must exit
within ``--timeout`` seconds. A copy that does not answer in time, or does not exit, is
killed with its process group, and the connection records why.

The local address of each copy's socket to HOST:PORT is read from ``/proc`` once it has
answered (the lab finds a scenario's packets by the client ports). Prints one JSON object
in the line client's ``--json`` form; exit status 0 iff every copy got every reply.
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lab.programs.hold import hold


@dataclass
class Copy:
    index: int
    sent: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    local: str | None = None
    error: str | None = None
    closed_early: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "local": self.local,
            "sent": self.sent,
            "replies": self.replies,
            "error": self.error,
            "closed_early": self.closed_early,
        }


def _hex_endpoint(host: str, port: int) -> str:
    """An IPv4 endpoint as /proc/net/tcp writes it: little-endian address, port in hex."""
    packed = socket.inet_aton(host)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def local_address(pid: int, host: str, port: int, protocol: str) -> str | None:
    """The local ``ip:port`` of the process's socket whose peer is host:port, if any."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        with open(f"/proc/{pid}/net/{protocol}") as table:
            rows = table.read().splitlines()[1:]
    except OSError:
        return None
    peer = _hex_endpoint(host, port)
    # A UDP client that never connect()s has no peer in the table: its only socket is it.
    unconnected = "00000000:0000" if protocol == "udp" else None
    found = None
    for row in rows:
        cols = row.split()
        if len(cols) <= 9 or cols[9] not in inodes:
            continue
        if cols[2] == peer or (cols[2] == unconnected and found is None):
            addr, _, hexport = cols[1].partition(":")
            ip = socket.inet_ntoa(int(addr, 16).to_bytes(4, "little"))
            found = f"{ip}:{int(hexport, 16)}"
            if cols[2] == peer:
                return found
    return found


class Driver:
    def __init__(self, args: argparse.Namespace, command: list[str]) -> None:
        self.args = args
        self.command = command
        self.why: str | None = None  # why the last read gave no line, if the driver knows

    def run(self, copy: Copy) -> None:
        proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # killed as a group, its children with it
        )
        assert proc.stdin is not None and proc.stdout is not None
        pending = b""
        try:
            for line in self.args.send:
                try:
                    proc.stdin.write(line.encode() + b"\n")
                    proc.stdin.flush()
                except BrokenPipeError:
                    copy.error = "the program closed its stdin (or exited) before all was sent"
                    break
                copy.sent.append(line)
                reply, pending = self.read_line(proc, pending)
                if reply is None:
                    break
                copy.replies.append(reply)
                if copy.local is None:
                    copy.local = local_address(
                        proc.pid, self.args.host, self.args.port, self.args.protocol
                    )
            if copy.error is None and len(copy.replies) < len(self.args.send):
                copy.closed_early = True
                copy.error = self.ended(proc, "exited")
            elif copy.error is None:
                hold(self.args.hold, self.args.release)
                proc.stdin.close()
                try:
                    proc.wait(self.args.timeout)
                except subprocess.TimeoutExpired:
                    copy.error = (
                        f"did not exit within {self.args.timeout:g} s of the end of its "
                        "stdin: killed"
                    )
        finally:
            if proc.poll() is None:
                kill(proc)

    def read_line(self, proc: subprocess.Popen[bytes], pending: bytes) -> tuple[str | None, bytes]:
        """The program's next stdout line, or None (killed or ended: the reason is noted)."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self.args.timeout
        while b"\n" not in pending:
            left = deadline - time.monotonic()
            if left <= 0:
                kill(proc)
                self.why = f"no reply line within {self.args.timeout:g} s: killed"
                return None, pending
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None, pending
            pending += chunk
        line, _, rest = pending.partition(b"\n")
        return line.decode("utf-8", "replace"), rest

    def ended(self, proc: subprocess.Popen[bytes], how: str) -> str:
        if self.why:
            return self.why
        try:
            status = proc.wait(self.args.timeout)
        except subprocess.TimeoutExpired:
            kill(proc)
            return f"stopped answering and did not exit within {self.args.timeout:g} s: killed"
        if status < 0:
            return f"{how} before all replies: killed by {signal.Signals(-status).name}"
        return f"{how} before all replies with status {status}"


def kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True, help="the program's name, for the record")
    parser.add_argument("--send", action="append", default=[])
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--release", metavar="FILE", help="after --hold, until FILE exists")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--protocol", choices=("tcp", "udp"), default="tcp")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after --")
    copies = [Copy(i) for i in range(args.count)]
    threads = []
    for copy in copies:
        driver = Driver(args, command)  # one each: a copy's reason is its own
        t = threading.Thread(target=driver.run, args=(copy,), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    ok = sum(1 for c in copies if c.error is None and len(c.replies) == len(args.send))
    doc = {
        "program": args.name,
        "server": f"{args.host}:{args.port}",
        "connections": [c.as_json() for c in copies],
        "ok": ok,
        "failed": len(copies) - ok,
    }
    print(json.dumps(doc, ensure_ascii=False), flush=True)
    return 0 if ok == len(copies) else 1


if __name__ == "__main__":
    sys.exit(main())
