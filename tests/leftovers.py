"""What a run may have left on this machine, found independently of the lab's own code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def netns_objects(run_id: str) -> list[str]:
    """Namespaces, links and temp dirs that carry the run id."""
    found = []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [
        f"netns {line.split()[0]}" for line in ns.splitlines() if line.startswith(f"slab-{run_id}-")
    ]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(f"slab{run_id}"):
            found.append(f"link {name}")
    if Path(f"/tmp/socket-lab/{run_id}").exists():
        found.append(f"dir /tmp/socket-lab/{run_id}")
    return found


def live_pids(results: Path) -> list[int]:
    """PIDs recorded in a run's run.json (services, captures) that are still alive."""
    run = json.loads((results / "run.json").read_text())
    expected = {
        int(s["pid"]): f"lab.programs.{s.get('program', '')}"
        for s in run.get("services", {}).values()
        if s.get("pid")
    }
    expected |= {int(c["pid"]): "tcpdump" for c in run.get("captures", []) if c.get("pid")}
    # PIDs are reused (pid_max is 32768 here): a recorded PID counts only while it is
    # still the program the run started under it.
    return [pid for pid, marker in expected.items() if marker in _cmdline(pid)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def run_id_of(results: Path) -> str:
    return str(json.loads((results / "run.json").read_text())["run_id"])


def signal_lab_run_at(
    topology: Path,
    out: Path,
    when: str,
    signum: int,
    cwd: Path,
    backend: str = "netns",
    extra: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `lab run` and send ``signum`` when a progress line contains ``when``.
    Returns the process (signalled, not yet waited for) and the progress lines read so far."""
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "run",
            str(topology),
            "--backend",
            backend,
            "--out",
            str(out),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if when in line:
            proc.send_signal(signum)
            break
    return proc, seen


# -- more independent counting, and driving `lab run` step by step (faults, interrupts) --


def processes_of_run(run_id: str) -> list[str]:
    """Live processes whose working directory is one of the run's node directories: every
    command the netns backend starts on a node runs there (clients included), so this
    finds them even when the namespace they ran in has been deleted."""
    found = []
    prefix = f"/tmp/socket-lab/{run_id}/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.startswith(prefix) and state != "Z":
            found.append(f"process {entry} in {cwd}")
    return found


def docker_objects(run_id: str) -> list[str]:
    """Containers and networks labelled with the run id."""
    import docker

    client = docker.from_env()
    try:
        label = f"socket-lab.run={run_id}"
        found = [
            f"container {c.name}"
            for c in client.containers.list(all=True, filters={"label": label})
        ]
        found += [f"network {n.name}" for n in client.networks.list(filters={"label": label})]
        return found
    finally:
        client.close()


def leftovers_of(results: Path) -> list[str]:
    """Everything of a results folder's run still on this machine, whatever its backend."""
    run_id = run_id_of(results)
    if json.loads((results / "run.json").read_text()).get("backend") == "docker":
        return docker_objects(run_id)  # its PIDs are the containers' own, not the host's
    found = netns_objects(run_id) + processes_of_run(run_id)
    return found + [f"recorded pid {pid}" for pid in live_pids(results)]


def start_lab_run(
    topology: Path, out: Path, cwd: Path, backend: str = "netns"
) -> subprocess.Popen[str]:
    """`lab run` in the background, its progress lines readable from ``proc.stderr``."""
    import sys

    argv = [sys.executable, "-m", "lab.cli", "run", str(topology), "--backend", backend]
    return subprocess.Popen(
        [*argv, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def read_until(proc: subprocess.Popen[str], step: str) -> list[str]:
    """Progress lines up to the first whose message (after ``[  1.2s] ``) starts with
    ``step``; AssertionError if `lab run` ends first."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.partition("] ")[2].startswith(step):
            return seen
    raise AssertionError(f"`lab run` ended before {step!r}:\n" + "".join(seen))


def run_id_in(lines: list[str]) -> str:
    """The run id from the progress line ``run <id>: results in ...``."""
    for line in lines:
        words = line.partition("] ")[2].split()
        if len(words) >= 2 and words[0] == "run" and words[1].endswith(":"):
            return words[1][:-1]
    raise AssertionError("no run id in the progress lines:\n" + "".join(lines))


def processes_from_tests() -> list[str]:
    """Every process still running that a test started, directly or through the lab: its
    environment, fixed when it was executed, names the test that was running then
    (PYTEST_CURRENT_TEST). pytest's own processes were executed before any test ran. Needs
    root to read other users' environments; a process it cannot read is not counted."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for variable in environ.split(b"\0"):
            if variable.startswith(b"PYTEST_CURRENT_TEST="):
                test = variable.split(b"=", 1)[1].decode(errors="replace")
                command = argv.replace(b"\0", b" ").decode(errors="replace").strip()[:100]
                found.append(f"process {entry} ({command}), started in {test}")
                break
    return found
