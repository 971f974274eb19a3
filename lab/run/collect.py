"""Evidence gathering on the nodes: tcpdump captures and netstat/ss/ps snapshots.

Everything here is built on ``Session.run``/``Session.spawn``, so it works the same on
every backend.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lab.errors import BackendError
from lab.run.backends.base import Proc
from lab.run.portrange import port_range_jobs
from lab.run.record import capture_log
from lab.run.session import Session
from lab.spec.model import Capture

# The snapshot commands, fixed: the analysis layer parses exactly these outputs.
SNAPSHOTS: dict[str, list[str]] = {
    "netstat": ["netstat", "-tanup"],
    "ss": ["ss", "-tanpi"],
    "ps": ["ps", "-e", "-o", "pid=,ppid=,stat=,nlwp=,args="],
}

PARALLEL = 8  # commands in flight at once across nodes
# Seconds between two looks at a log this host can read itself (no command on the node):
# such a look costs microseconds, so a starting tcpdump or service is seen at once.
LOCAL_LOOK = 0.005
LOCAL_LIMIT = 65536  # bytes of such a log looked at: its first lines say it started
# Seconds at most between two looks by a command on the node (a fork through the Docker
# node's agent, an SSH round trip): a tcpdump whose ring takes 0.15 s to set up is seen
# then, not at the next step of a backoff that had reached a quarter of a second.
REMOTE_LOOK = 0.05


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.02,
    most: float = 0.25,
) -> None:
    """Poll ``condition`` with backoff until it holds; BackendError naming ``what`` if not.
    This is readiness polling on an observable fact, never a fixed sleep. ``most`` bounds
    the backoff: what is expected within a second is looked at more often."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BackendError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 1.5, most)


def snapshot(session: Session, phase: str, nodes: Iterable[str] | None = None) -> dict[str, str]:
    """Run every snapshot command on every node; write ``<node>/snapshots/<phase>.<kind>.txt``.

    A node that cannot be read (its namespace deleted, its container dead) gets no file for
    that command: the returned map says why, per node, and the other nodes are still taken.
    Where every node sees the same processes (``shares_process_table``), ps runs on the
    first node only and each node keeps a copy of what it printed.
    """
    names = list(nodes) if nodes is not None else [n.name for n in session.topology.nodes]
    once = session.backend.shares_process_table and len(names) > 1
    jobs = [
        (node, kind, argv)
        for node in names
        for kind, argv in SNAPSHOTS.items()
        if not (once and kind == "ps" and node != names[0])
    ]
    jobs += port_range_jobs(session.topology, phase, names)
    errors: dict[str, str] = {}

    def one(job: tuple[str, str, list[str]]) -> None:
        node, kind, argv = job
        try:
            result = session.run(node, argv, timeout=20.0)
        except BackendError as exc:
            errors.setdefault(node, f"{kind}: {exc}")
            return
        if not result.ok and not result.stdout.strip():
            why = (result.stderr.strip().splitlines() or [""])[-1]
            errors.setdefault(node, f"{kind}: exit status {result.returncode}: {why}")
            return
        folder = session.node_dir(node) / "snapshots"
        folder.mkdir(parents=True, exist_ok=True)
        text = result.stdout if result.ok else result.stdout + result.stderr
        (folder / f"{phase}.{kind}.txt").write_text(text)

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(one, jobs))
        if once:
            first = session.node_dir(names[0]) / "snapshots" / f"{phase}.ps.txt"
            if first.is_file():
                for node in names[1:]:
                    _keep_copy(first, session.node_dir(node) / "snapshots" / first.name)
            else:  # the first node could not be read: each of the others is asked
                list(pool.map(one, [(node, "ps", SNAPSHOTS["ps"]) for node in names[1:]]))
    return errors


def _keep_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


@dataclass(frozen=True)
class CaptureHandle:
    node: str
    interface: str
    network: str
    file: str  # name inside the node's folder
    proc: Proc


def start_captures(session: Session) -> list[CaptureHandle]:
    """One tcpdump per interface per node, writing pcap files; returns once all listen.
    The nodes are started at once: on Docker each start is a few requests to the engine."""
    cap = session.topology.capture
    if not cap.enabled:
        return []
    interfaces = {n.name: session.backend.interfaces(n.name) for n in session.topology.nodes}
    ring = cap.ring_kib(sum(len(found) for found in interfaces.values()))

    def node_captures(node: str) -> list[CaptureHandle]:
        handles = []
        for network, ifname in interfaces[node].items():
            pcap = f"{ifname}.pcap"
            argv = tcpdump_argv(ifname, cap, ring, session.workdir(node) / pcap)
            proc = session.spawn(node, argv, capture_log(ifname))
            handles.append(CaptureHandle(node, ifname, network, pcap, proc))
        _wait_listening(session, node, handles)
        return handles

    with ThreadPoolExecutor(PARALLEL) as pool:
        started = list(pool.map(node_captures, interfaces))
    return [h for handles in started for h in handles]


def tcpdump_argv(ifname: str, cap: Capture, ring_kib: int, pcap: PurePosixPath) -> list[str]:
    """One interface's tcpdump, writing ``pcap`` through a kernel ring of ``ring_kib``."""
    # --immediate-mode: without it the last packets sit in the kernel's ring buffer
    # (about a second) and are lost when tcpdump is stopped right after the traffic.
    argv = ["tcpdump", "-i", ifname, "-n", "-U", "--immediate-mode"]
    argv += ["-s", str(cap.snaplen), "-B", str(ring_kib), "-w", str(pcap), "-Z", "root"]
    return [*argv, cap.filter] if cap.filter else argv


def _wait_listening(session: Session, node: str, handles: list[CaptureHandle]) -> None:
    logs = [session.workdir(node) / capture_log(h.interface) for h in handles]
    local = [session.backend.local_path(node, log) for log in logs]
    here = [path for path in local if path is not None]

    def ready() -> bool:
        for h, log in zip(handles, logs, strict=True):
            if not h.proc.running():
                text = read_node_file(session, node, log)
                raise BackendError(f"tcpdump on {node}:{h.interface} exited: {text.strip()}")
        if len(here) == len(logs):  # read here, not by a `cat` on the node at every look
            out = b"".join(read_start(path) for path in here).decode(errors="replace")
        else:
            out = session.run(node, ["cat", *map(str, logs)], timeout=10.0).stdout
        return out.count("listening on") >= len(handles)

    what = f"tcpdump to start on {node}"
    if len(here) == len(logs):
        wait_until(ready, timeout=20.0, what=what, interval=LOCAL_LOOK, most=LOCAL_LOOK)
    else:
        wait_until(ready, timeout=20.0, what=what, most=REMOTE_LOOK)


def read_start(path: Path) -> bytes:
    """The first ``LOCAL_LIMIT`` bytes of a node's log on this host; b"" if not there yet."""
    try:
        with open(path, "rb") as f:
            return f.read(LOCAL_LIMIT)
    except OSError:
        return b""


def stop_captures(handles: Iterable[CaptureHandle]) -> dict[str, str]:
    """SIGTERM makes tcpdump flush and close its file; it is stopped before fetching.
    A capture on a node that has gone cannot be stopped: the map says which, and why.
    All are stopped at once: on Docker each signal is a command of its own."""
    errors: dict[str, str] = {}

    def one(h: CaptureHandle) -> None:
        try:
            h.proc.stop(timeout=5.0)
        except BackendError as exc:
            errors.setdefault(h.node, f"stopping tcpdump on {h.interface}: {exc}")

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(one, handles))
    return dict(sorted(errors.items()))


def read_node_file(session: Session, node: str, path: PurePosixPath, limit: int = 4000) -> str:
    """The last ``limit`` characters of a file on a node (for error messages)."""
    result = session.run(node, ["tail", "-c", str(limit), str(path)], timeout=10.0)
    return result.stdout
