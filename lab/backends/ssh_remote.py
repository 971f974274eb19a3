"""The small programs the ssh backend runs on a host with ``python3 -c``.

They are constant texts: every value (paths, PIDs, markers) reaches them as an argument,
quoted, never pasted in. A process is named by its PID *and* its start time (field 22 of
``/proc/PID/stat``), so that a recycled PID is never signalled.
"""

from __future__ import annotations

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

# argv: STATUS PID START — prints "exit N", "running" or "gone" (ended, status unknown:
# its monitor was killed). A just-ended process's status is waited for briefly.
STATE = r"""
import os, sys, time
status, pid, start = sys.argv[1], sys.argv[2], sys.argv[3]
def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start and fields[0] != "Z"
deadline = time.monotonic() + 1.0
while True:
    try:
        with open(status) as f:
            print("exit", f.read().strip())
        break
    except FileNotFoundError:
        pass
    if alive():
        print("running")
        break
    if time.monotonic() > deadline:
        print("gone")
        break
    time.sleep(0.01)
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

# argv: ADDRESS... — prints JSON {"addresses": {address: interface or null},
# "gateway": default gateway or null}, from the interfaces' addresses and /proc/net/route.
INSPECT = r"""
import fcntl, json, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
have = {}
for index, name in socket.if_nameindex():
    try:
        req = struct.pack("256s", name.encode())
        have[socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])] = name
    except OSError:
        pass
gateway = None
with open("/proc/net/route") as f:
    for line in f.read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000" and fields[7] == "00000000":
            gateway = socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
print(json.dumps({"addresses": {a: have.get(a) for a in sys.argv[1:]}, "gateway": gateway}))
"""

# Prints the tools of the lab that are not on PATH, one per line.
MISSING_TOOLS = (
    'for t in tcpdump ss netstat ps; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done'
)

# The Debian package of each tool, for the message that says what to install.
TOOL_PACKAGES = {"tcpdump": "tcpdump", "ss": "iproute2", "netstat": "net-tools", "ps": "procps"}
