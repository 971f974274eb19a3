"""The small programs the ssh backend runs on a host (``python3 -c`` or ``sh -c``), and
the reading of what they and ``/proc`` say.

They are constant texts: every value (paths, PIDs, markers) reaches them as an argument,
quoted, never pasted in. A process is named by its PID *and* its start time (field 22 of
``/proc/PID/stat``), so that a recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

# argv: STATUS LOG PROGRAM... — starts PROGRAM in its own session with stdout and stderr
# appended to LOG, under a monitor that writes PROGRAM's exit status (as Python's
# waitstatus_to_exitcode: minus the signal number when killed) to STATUS. Prints
# "PID STARTTIME" of PROGRAM once it has exec()ed (or failed to), then returns.
LAUNCH = r"""
import os, sys
status, log, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
r, w = os.pipe()
if os.fork():
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 64)
        if not chunk:
            break
        data += chunk
    print(data.decode().strip(), flush=True)
    sys.exit(0 if data else 1)
os.setsid()
out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
null = os.open(os.devnull, os.O_RDWR)
pid = os.fork()
if pid == 0:
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"cannot run {argv[0]}: {exc}\n".encode())
    os._exit(127)
with open(f"/proc/{pid}/stat") as f:
    start = f.read().rsplit(")", 1)[1].split()[19]
os.write(w, f"{pid} {start}".encode())
os.close(w)
for fd in (0, 1, 2):
    os.dup2(null, fd)
_, st = os.waitpid(pid, 0)
with open(status + ".tmp", "w") as f:
    f.write(str(os.waitstatus_to_exitcode(st)))
os.rename(status + ".tmp", status)
"""

# argv: PID START SIGNUM — signals the process only if its start time still matches.
SIGNAL = r"""
import os, sys
pid, start, signum = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
try:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    if fields[19] == start and fields[0] != "Z":
        os.kill(pid, signum)
except (OSError, IndexError):
    pass
"""

# argv: MARKER ROOT PID:START... — stops every process whose environment holds MARKER
# (KEY=VALUE, inherited by every child) and every listed process whose start time
# matches: SIGTERM, then SIGKILL for what is left. Then removes ROOT if it is a run's
# temp dir. Prints JSON {killed, left, removed}.
REAP = r"""
import json, os, re, shutil, signal, sys, time
marker, root, pairs = sys.argv[1].encode(), sys.argv[2], sys.argv[3:]
me = os.getpid()
def start_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]
def marked():
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker in env:
            start = start_of(int(name))
            if start:
                found[int(name)] = start
    return found
targets = marked()
for pair in pairs:
    pid, start = pair.split(":")
    if start_of(int(pid)) == start:
        targets[int(pid)] = start
killed = set(targets)
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pid, start in list(targets.items()):
        if start_of(pid) == start:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    deadline = time.monotonic() + 2.0
    while targets and time.monotonic() < deadline:
        time.sleep(0.02)
        targets = {p: s for p, s in targets.items() if start_of(p) == s}
        more = marked()  # a child forked meanwhile
        killed |= set(more)
        targets.update(more)
removed = False
if re.fullmatch(r"/tmp/socket-lab-ssh-[0-9a-f]{6}-[a-z0-9-]+\.[A-Za-z0-9]+", root):
    if os.path.isdir(root):
        shutil.rmtree(root, ignore_errors=True)
        removed = not os.path.exists(root)
print(json.dumps({"killed": sorted(killed), "left": sorted(targets), "removed": removed}))
"""

# argv: PYTHON — everything pre-flight needs to know, in one command (each one over SSH
# starts the user's login shell): one finding per line, "KIND VALUE...":
#   access root|sudo|none       who the lab's commands would run as
#   missing TOOL                a tool of the lab not on PATH (as that user)
#   python X.Y EXECUTABLE       the interpreter's version and real path ("python none")
#   addr LINE                   a line of `ip -o -4 addr show` (secondary addresses too)
#   route LINE                  a line of /proc/net/route
#   listen LINE                 a line of `ss -Hlntu`: a TCP or UDP port taken on the host
# ``$as`` is left unquoted on purpose: it is empty or the three constant words of sudo.
PREFLIGHT = r"""
py=$1; shift
if [ "$(id -u)" = 0 ]; then as=; echo "access root"
elif sudo -n true 2>/dev/null; then as="sudo -n --"; echo "access sudo"
else as=; echo "access none"; fi
$as sh -c 'for t in tcpdump ss netstat ps "$@"; do
  command -v "$t" >/dev/null 2>&1 || echo "missing $t"; done' sh "$@"
$as "$py" -c 'import sys; print("python %d.%d %s" % (sys.version_info[:2] + (sys.executable,)))' \
  2>/dev/null || echo "python none"
PATH="$PATH:/usr/sbin:/sbin" ip -o -4 addr show 2>/dev/null | sed 's/^/addr /'
sed 's/^/route /' /proc/net/route
$as ss -Hlntu 2>/dev/null | sed 's/^/listen /'
"""

# The Debian package of each tool, for the message that says what to install.
TOOL_PACKAGES = {
    "tcpdump": "tcpdump", "ss": "iproute2", "netstat": "net-tools", "ps": "procps",
    # The user programs' default compilers (other build and run commands: by their name).
    "cc": "gcc", "gcc": "gcc", "c++": "g++", "g++": "g++",
}  # fmt: skip


@dataclass
class Found:
    """What PREFLIGHT reported about a host."""

    access: str = "none"
    missing: list[str] = field(default_factory=list)
    version: str | None = None  # "X.Y", None when no interpreter answered
    executable: str | None = None
    addresses: dict[str, str] = field(default_factory=dict)  # IPv4 address -> interface
    gateway: str | None = None
    listening: set[tuple[str, int]] = field(default_factory=set)  # (tcp|udp, port) taken


def parse_preflight(text: str) -> Found:
    found = Found()
    addr_lines: list[str] = []
    route_lines: list[str] = []
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "access":
            found.access = rest.strip()
        elif kind == "missing":
            found.missing.append(rest.strip())
        elif kind == "python":
            words = rest.split(maxsplit=1)
            if words and re.fullmatch(r"[0-9]+\.[0-9]+", words[0]):
                found.version = words[0]
                found.executable = words[1].strip() if len(words) > 1 else None
        elif kind == "addr":
            addr_lines.append(rest)
        elif kind == "route":
            route_lines.append(rest)
        elif kind == "listen":
            found.listening |= parse_listening(rest)
    found.addresses = parse_ip_addr(addr_lines)
    found.gateway = parse_route(route_lines)
    return found


def parse_ip_addr(lines: Iterable[str]) -> dict[str, str]:
    """IPv4 address -> interface from ``ip -o -4 addr show``: every address of an
    interface, primary or secondary (``inet 10.0.0.2/24 ... secondary eth0:1``), named by
    the interface itself (``eth0``), which is what tcpdump captures on."""
    found: dict[str, str] = {}
    for line in lines:
        words = line.split()
        if len(words) < 4 or words[2] != "inet":
            continue
        name = words[1].split("@", 1)[0]
        found.setdefault(words[3].split("/", 1)[0], name)
    return found


def parse_listening(line: str) -> set[tuple[str, int]]:
    """The (protocol, port) of a line of ``ss -Hlntu`` (``tcp LISTEN 0 128 0.0.0.0:9999
    0.0.0.0:*``, ``udp UNCONN 0 0 [::]:8080 [::]:*``); empty for a line it cannot read."""
    words = line.split()
    if len(words) < 5 or words[0] not in ("tcp", "udp"):
        return set()
    port = words[4].rsplit(":", 1)[-1]
    return {(words[0], int(port))} if port.isdigit() else set()


def parse_route(lines: Iterable[str]) -> str | None:
    """The default gateway from /proc/net/route (its header line skipped), or None."""
    for line in lines:
        fields = line.split()
        if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
            with contextlib.suppress(ValueError):
                return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    return None


def alive_in_stat(text: bytes | None, start: str) -> bool:
    """Whether ``/proc/PID/stat`` (its text, None when absent) is of the process that
    started at ``start`` and has not ended (a zombie has)."""
    if not text:
        return False
    fields = text.decode(errors="replace").rsplit(")", 1)[-1].split()
    return len(fields) > 19 and fields[19] == start and fields[0] != "Z"
