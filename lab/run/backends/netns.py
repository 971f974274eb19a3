"""The network-namespace backend: every node is a Linux network namespace on this host.

Like Mininet: one namespace per node, one Linux bridge per network, and one veth pair
per node interface, whose switch end is a bridge port and whose other end is ``ethK``
inside the node. Processes on nodes are ordinary host processes that ``ip netns exec``
moved into the node's namespace, so a node's files are host files.

The bridges live in one more namespace of the run, its *switch* (``slab-<rid>-_switch``:
no node can have that name), not in the host's. The host's bridge netfilter settings are
global to its namespace and a bridge's own ``nf_call_iptables 0`` cannot turn them off:
where Docker runs (br_netfilter loaded, FORWARD policy DROP) every frame crossing a
root-namespace bridge would go through the host's iptables and be dropped, or NATed if a
lab subnet overlapped a Docker one. In the switch's namespace bridge netfilter is off and
the bridges have no address, so the host neither filters, tracks nor routes lab traffic.

Every object is named after the run id, and teardown finds objects by that name only,
never by what this process remembers; so ``down`` after a partial ``up``, after Ctrl-C,
or from another process (``clean``) all remove exactly the same things:

- namespaces ``slab-<rid>-<node>`` and ``slab-<rid>-_switch``
- in the switch: bridges ``slab<rid>b<N>`` (N: the network's index) and the switch ends
  of veths ``slab<rid>v<N>`` (N: a running interface index), within 15 characters; links
  with these names in the host's namespace are removed too (none are made there)
- node directories ``/tmp/socket-lab/<rid>/<node>/``

IPv6 is turned off on every lab interface (in each namespace before its interfaces
exist): otherwise router solicitations, DAD and MLD reports from
link-local addresses show up in every capture and have nothing to do with the course.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import lab
from lab.errors import BackendError, CommandTimeout
from lab.run.backends.base import RUN_ID_RE, Backend, Completed, Proc, node_of
from lab.spec.model import Node, Topology

BASE_DIR = Path("/tmp/socket-lab")
NETNS_DIR = Path("/run/netns")

# Any namespace of a run, whatever follows the prefix: teardown must find all of them.
NS_RE = re.compile(r"^slab-(?P<rid>[0-9a-f]{6})-")
NODE_RE = re.compile(r"^[a-z][a-z0-9-]*$")
SWITCH = "_switch"
LINK_RE = re.compile(r"^slab(?P<rid>[0-9a-f]{6})(?P<kind>[bv])(?P<index>[0-9]+)$")

IFNAMSIZ = 15  # Linux interface names: at most 15 characters
TERM_GRACE = 1.0  # seconds a node process gets between SIGTERM and SIGKILL at teardown
PARALLEL = 32  # per-namespace configuration commands run at once during up()
VETH_GRACE = 5.0  # seconds to let the kernel remove a deleted namespace's veths itself
EXEC_WAIT = 5.0  # seconds spawn() waits for `ip netns exec` to become the program
IP_TIMEOUT = 120.0  # a single `ip` invocation (a batch can hold thousands of commands)

# Bridges: no STP delay; no multicast snooping (a snooping bridge joins 224.0.0.106 and
# its IGMP reports would land in every node's capture); no netfilter on bridged frames
# (see the module docstring: the switch's namespace also turns it off as a whole).
BRIDGE_OPTIONS = (
    "type bridge forward_delay 0 mcast_snooping 0"
    " nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0"
)


def ns_name(run_id: str, node: str) -> str:
    return f"slab-{run_id}-{node}"


def bridge_name(run_id: str, index: int) -> str:
    return f"slab{run_id}b{index}"


def veth_name(run_id: str, index: int) -> str:
    return f"slab{run_id}v{index}"


# -- running `ip` and friends -------------------------------------------------------------


def _ip(args: Sequence[str], *, batch: Sequence[str] = (), check: bool = True) -> str:
    """Run ``ip <args>`` (with ``-batch -`` fed ``batch`` lines when given); its stdout.

    Batch lines are argument lists joined by spaces: ``ip`` splits them on whitespace
    itself, and every value placed in them is a validated name or an address, never
    anything with spaces or quotes (see ``_check_token``).
    """
    argv = ["ip", *args]
    text: str | None = None
    if batch:
        argv += ["-batch", "-"]
        text = "".join(line + "\n" for line in batch)
    try:
        done = subprocess.run(
            argv, input=text, capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{' '.join(argv)}: {exc}") from exc
    if check and done.returncode != 0:
        raise BackendError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


_TOKEN_RE = re.compile(r"^[A-Za-z0-9._:/-]+$")


def _check_token(value: str) -> str:
    """Refuse a value that could change the meaning of an ``ip -batch`` line."""
    if not _TOKEN_RE.match(value):
        raise BackendError(f"refusing unexpected characters in {value!r}")
    return value


def _run_parallel(commands: Sequence[tuple[list[str], str | None]], what: str) -> None:
    """Run commands (argv, stdin text), at most PARALLEL at once; raise on the first failure.

    On any exception (KeyboardInterrupt included) every started command is killed and
    reaped before the exception goes on, so nothing keeps changing the host afterwards.
    """
    running: list[tuple[subprocess.Popen[str], list[str], str | None]] = []
    errors: list[str] = []

    def finish(entry: tuple[subprocess.Popen[str], list[str], str | None]) -> None:
        proc, argv, text = entry
        _, err = proc.communicate(text, timeout=IP_TIMEOUT)
        if proc.returncode != 0:
            errors.append(f"{' '.join(argv)}: {err.strip()}")

    try:
        for argv, text in commands:
            if len(running) >= PARALLEL:
                finish(running.pop(0))
            stdin = subprocess.PIPE if text is not None else subprocess.DEVNULL
            proc = subprocess.Popen(
                argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            running.append((proc, argv, text))
        while running:
            finish(running.pop(0))
    except BaseException:
        for proc, _, _ in running:
            proc.kill()
            proc.wait()
        raise
    if errors:
        raise BackendError(f"{what} failed: " + "; ".join(errors))


# -- finding a run's objects by name ------------------------------------------------------


def _namespaces() -> list[str]:
    """Lab namespaces on this host (any run)."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if NS_RE.match(n))


def _links() -> list[str]:
    """Lab bridges and host-side veths in the root namespace (any run)."""
    out = _ip(["-j", "link", "show"])
    names = [entry.get("ifname", "") for entry in json.loads(out or "[]")]
    return sorted(n for n in names if LINK_RE.match(n))


def _run_dirs() -> list[str]:
    try:
        names = os.listdir(BASE_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if RUN_ID_RE.match(n) and (BASE_DIR / n).is_dir())


def _ns_rid(name: str) -> str:
    m = NS_RE.match(name)
    assert m is not None
    return m["rid"]


def _link_rid(name: str) -> str:
    m = LINK_RE.match(name)
    assert m is not None
    return m["rid"]


def _link_kind(name: str) -> str:
    """``b`` for a bridge, ``v`` for a host-side veth."""
    m = LINK_RE.match(name)
    assert m is not None
    return m["kind"]


def _pids_in(namespaces: Iterable[str]) -> dict[int, str]:
    """PIDs of live processes in the given namespaces, mapped to the namespace name.

    What ``ip netns pids`` does, once for all namespaces: a process is in a namespace
    when its /proc/PID/ns/net is the same inode as the namespace's bind mount.
    """
    wanted: dict[tuple[int, int], str] = {}
    for name in namespaces:
        try:
            st = os.stat(NETNS_DIR / name)
        except OSError:
            continue
        wanted[(st.st_dev, st.st_ino)] = name
    found: dict[int, str] = {}
    if not wanted:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone, or a zombie (no namespace any more)
            continue
        owner = wanted.get((st.st_dev, st.st_ino))
        if owner is not None:
            found[int(entry)] = owner
    return found


def _exited(pid: int) -> bool:
    """True once a process has ended: gone, or a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


def _signal_and_wait(pids: Iterable[int], signum: int, grace: float) -> list[int]:
    """Send ``signum`` to each PID and wait up to ``grace`` s; the PIDs still running."""
    pending = sorted(pids)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        time.sleep(0.01)
        pending = [pid for pid in pending if not _exited(pid)]
    return pending


def _kill_all(namespaces: Sequence[str]) -> tuple[list[int], list[int]]:
    """SIGTERM every process in the namespaces, wait briefly, SIGKILL the rest. Returns
    the PIDs found and those that survived even SIGKILL (stuck in the kernel).

    A process counts as stopped only once it has exited for good (a zombie is fine), not
    merely left the namespace: a dying process drops its namespace a moment before it
    exits, and callers check ``Proc.running()`` right after teardown. The namespaces are
    looked at again before SIGKILL, for children forked meanwhile.
    """
    first = _pids_in(namespaces)
    survivors = _signal_and_wait(first, signal.SIGTERM, TERM_GRACE)
    late = _pids_in(namespaces)
    survivors = _signal_and_wait({*survivors, *late}, signal.SIGKILL, TERM_GRACE)
    return sorted({*first, *late}), survivors


def _remove_run(run_id: str) -> list[str]:
    """Remove every object named after ``run_id``; what was removed, one item each.

    Processes first (a process keeps its namespace alive), then the namespaces, the
    switch's included: the kernel destroys their devices (bridges, both ends of every
    veth) in one batch, where deleting veths one by one costs an RCU grace period each
    (about 20 ms: two seconds for 100 nodes). Links with the run's names in the host's
    own namespace are not made by ``up`` but are removed as well, after a short wait for
    the kernel in case they were veths whose other end was in a deleted namespace.
    """
    if not RUN_ID_RE.match(run_id):  # it becomes part of a path given to rmtree
        raise BackendError(f"run id must be six hex digits, got {run_id!r}")
    removed: list[str] = []
    namespaces = [n for n in _namespaces() if _ns_rid(n) == run_id]
    killed, survivors = _kill_all(namespaces)
    removed += [f"process {pid}" for pid in killed if pid not in survivors]
    links = _run_links(run_id)
    if namespaces:
        _ip(["-force"], batch=[f"netns del {n}" for n in namespaces], check=False)
        removed += [f"namespace {n}" for n in namespaces]
    deadline = time.monotonic() + VETH_GRACE
    veths = [n for n in links if _link_kind(n) == "v"]
    while veths and time.monotonic() < deadline:
        time.sleep(0.02)
        veths = [n for n in _run_links(run_id) if _link_kind(n) == "v"]
    bridges = [n for n in links if _link_kind(n) == "b"]
    if veths or bridges:
        # -force: keep going past a link that vanished meanwhile.
        _ip(["-force"], batch=[f"link del dev {n}" for n in (*veths, *bridges)], check=False)
    removed += [f"link {n}" for n in links]
    run_dir = BASE_DIR / run_id
    if run_dir.exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        removed.append(f"directory {run_dir}")
    left = [n for n in _namespaces() if _ns_rid(n) == run_id] + _run_links(run_id)
    left += [f"process {pid}" for pid in survivors]
    if left:
        raise BackendError(f"could not remove {', '.join(left)}")
    return removed


def _run_links(run_id: str) -> list[str]:
    return [n for n in _links() if _link_rid(n) == run_id]


# -- processes on nodes --------------------------------------------------------------------


class NetnsProc(Proc):
    """A process started by ``ip netns exec``; it exec()s the program, so the PID is its."""

    def __init__(self, node: str, argv: Sequence[str], popen: subprocess.Popen[bytes]) -> None:
        self.node = node
        self.argv = tuple(argv)
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    def running(self) -> bool:
        return self._popen.poll() is None

    def signal(self, signum: int) -> None:
        # Popen.send_signal does nothing once the process has been reaped, so a
        # recycled PID is never signalled.
        with contextlib.suppress(ProcessLookupError):
            self._popen.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        try:
            return self._popen.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return None


@dataclass(frozen=True)
class _Attachment:
    """One node interface: the veth pair that joins node ``node`` to bridge ``bridge``."""

    node: str
    ifname: str
    veth: str
    bridge: str
    cidr: str


class NetnsBackend(Backend):
    """Nodes are network namespaces on this host, networks are Linux bridges."""

    name = "netns"

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self._topology: Topology | None = None

    # -- lifecycle ---------------------------------------------------------------------
    @classmethod
    def available(cls) -> str | None:
        if os.geteuid() != 0:
            return (
                "the netns backend needs root (network namespaces): "
                "run as root, or use --backend docker"
            )
        for tool, package in (("ip", "iproute2"), ("sysctl", "procps")):
            if shutil.which(tool) is None:
                return f"the netns backend needs `{tool}`: apt-get install {package}"
        return None

    def up(self, topology: Topology) -> None:
        self._topology = topology
        attachments = self._plan(topology)
        self._make_dirs(topology)
        names = [SWITCH, *(n.name for n in topology.nodes)]
        _ip([], batch=[f"netns add {ns_name(self.run_id, n)}" for n in names])
        self._sysctls(topology)
        switch = ns_name(self.run_id, SWITCH)
        _ip(["-n", switch], batch=self._link_batch(topology, attachments))
        self._configure_nodes(topology, attachments)

    def down(self) -> None:
        _remove_run(self.run_id)

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        if run_id is not None:
            return _remove_run(run_id)
        rids = {_ns_rid(n) for n in _namespaces()}
        rids |= {_link_rid(n) for n in _links()}
        rids |= set(_run_dirs())
        removed: list[str] = []
        for rid in sorted(rids):
            removed += _remove_run(rid)
        return removed

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        counts: dict[str, int] = {}
        for name in _namespaces():
            rid = _ns_rid(name)
            nodes = 0 if name == ns_name(rid, SWITCH) else 1
            counts[rid] = counts.get(rid, 0) + nodes
        return {rid: f"netns lab, {n} node{'s' if n != 1 else ''}" for rid, n in counts.items()}

    # -- on a node ---------------------------------------------------------------------
    @property
    def python(self) -> str:
        return sys.executable

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        full = self._exec_argv(node, argv)
        try:
            proc = subprocess.Popen(
                full,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env(),
                cwd=self._cwd(node),
                start_new_session=True,  # its own process group, killed as a whole on timeout
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise BackendError(f"cannot run {argv[0]!r} on {node}: {exc}") from exc
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(proc)
            raise CommandTimeout(
                f"{' '.join(argv)} on {node} did not finish within {timeout:g} s"
            ) from None
        except BaseException:
            self._kill_group(proc)
            raise
        return Completed(tuple(argv), proc.returncode, out, err)

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        full = self._exec_argv(node, argv)
        path = Path(log)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as out:
                popen = subprocess.Popen(
                    full,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    cwd=self._cwd(node),
                    start_new_session=True,  # Ctrl-C on the terminal is the session's to handle
                )
        except OSError as exc:
            raise BackendError(f"cannot start {argv[0]!r} on {node}: {exc}") from exc
        self._wait_for_exec(popen, full, node)
        return NetnsProc(node, argv, popen)

    def workdir(self, node: str) -> PurePosixPath:
        return PurePosixPath(BASE_DIR / self.run_id / node)

    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        source = Path(remote_dir)
        if not source.is_dir():
            if not source.exists() and source.is_relative_to(BASE_DIR / self.run_id):
                # The run's own directory that an interrupted up() never made: it holds
                # nothing, which is not an error when evidence is collected after a failure.
                local_dir.mkdir(parents=True, exist_ok=True)
                return
            raise BackendError(f"{remote_dir} on {node} is not a directory")
        try:
            shutil.copytree(source, local_dir, dirs_exist_ok=True, symlinks=True)
        except (OSError, shutil.Error) as exc:
            raise BackendError(f"copying {remote_dir} from {node}: {exc}") from exc

    def interfaces(self, node: str) -> Mapping[str, str]:
        n = self._node(node)
        return {iface.network: f"eth{k}" for k, iface in enumerate(n.interfaces)}

    # -- helpers -----------------------------------------------------------------------
    def _node(self, node: str) -> Node:
        return node_of(self._topology, node)

    def _exec_argv(self, node: str, argv: Sequence[str]) -> list[str]:
        self._node(node)
        if not argv:
            raise BackendError("empty command")
        return ["ip", "netns", "exec", ns_name(self.run_id, node), *argv]

    def _env(self) -> dict[str, str]:
        """The caller's environment, with the directory holding ``lab`` first on PYTHONPATH."""
        env = dict(os.environ)
        src = str(Path(lab.__file__).resolve().parent.parent)
        parts = [src, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != src)]
        env["PYTHONPATH"] = os.pathsep.join(parts)
        return env

    def _cwd(self, node: str) -> str:
        # The node's own directory: relative paths land with its other files, and
        # `python -c` does not pick up modules from wherever the caller stood.
        wd = Path(self.workdir(node))
        return str(wd) if wd.is_dir() else "/"

    def _wait_for_exec(
        self, popen: subprocess.Popen[bytes], full: Sequence[str], node: str
    ) -> None:
        """Return once ``ip netns exec`` has become the program (or the program ended).

        For a moment after Popen the PID is still ``ip`` (or not even that yet); a caller
        that signals it, or looks for it in ``ps``, must meet the program itself. Done
        means: in the node's namespace, with a command line that is not ``ip``'s.
        """
        try:
            target = os.stat(NETNS_DIR / ns_name(self.run_id, node))
        except OSError:
            return
        wrapper = "\0".join(full).encode() + b"\0"
        deadline = time.monotonic() + EXEC_WAIT
        while popen.poll() is None and time.monotonic() < deadline:
            try:
                st = os.stat(f"/proc/{popen.pid}/ns/net")
                with open(f"/proc/{popen.pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                return
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino) and cmdline != wrapper:
                return
            time.sleep(0.001)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[str]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()

    def _plan(self, topology: Topology) -> list[_Attachment]:
        """Names and addresses of every link, checked before anything is created."""
        bridges = {net.name: bridge_name(self.run_id, k) for k, net in enumerate(topology.networks)}
        plan: list[_Attachment] = []
        for node in topology.nodes:
            if not NODE_RE.match(node.name):
                raise BackendError(f"invalid node name {node.name!r}")
            for k, iface in enumerate(node.interfaces):
                if iface.network not in bridges:
                    raise BackendError(f"node {node.name}: no network {iface.network!r}")
                prefix = topology.network(iface.network).subnet.prefixlen
                veth = veth_name(self.run_id, len(plan))
                plan.append(
                    _Attachment(
                        node.name,
                        f"eth{k}",
                        veth,
                        bridges[iface.network],
                        f"{iface.address}/{prefix}",
                    )
                )
        longest = max([*bridges.values(), *(a.veth for a in plan)], key=len, default="")
        if len(longest) > IFNAMSIZ:
            raise BackendError(f"too many networks or interfaces: {longest} exceeds 15 characters")
        return plan

    def _make_dirs(self, topology: Topology) -> None:
        """Create the run's node directories, refusing a base directory someone else owns."""
        BASE_DIR.mkdir(mode=0o755, exist_ok=True)
        st = os.lstat(BASE_DIR)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise BackendError(f"{BASE_DIR} is not a directory owned by this user; remove it")
        run_dir = BASE_DIR / self.run_id
        run_dir.mkdir(mode=0o755, exist_ok=True)
        for node in topology.nodes:
            wd = run_dir / node.name
            wd.mkdir(exist_ok=True)
            # World-writable and sticky, like /tmp: tcpdump drops to its own user before
            # it opens the capture file, and must still be able to write it here.
            os.chmod(wd, 0o1777)  # noqa: S103

    def _sysctls(self, topology: Topology) -> None:
        """Forwarding on routers only (a new namespace may inherit the host's 1), and
        IPv6 off for every interface the namespace gets from now on; in the switch, no
        netfilter for bridged frames (``-e``: those keys exist only with br_netfilter)."""
        switch = [
            "ip", "netns", "exec", ns_name(self.run_id, SWITCH),
            "sysctl", "-q", "-e", "-w",
            "net.ipv4.ip_forward=0",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
            "net.bridge.bridge-nf-call-iptables=0",
            "net.bridge.bridge-nf-call-ip6tables=0",
            "net.bridge.bridge-nf-call-arptables=0",
        ]  # fmt: skip
        commands: list[tuple[list[str], str | None]] = [(switch, None)]
        for node in topology.nodes:
            argv = [
                "ip", "netns", "exec", ns_name(self.run_id, node.name),
                "sysctl", "-q", "-w",
                f"net.ipv4.ip_forward={1 if node.router else 0}",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]  # fmt: skip
            commands.append((argv, None))
        _run_parallel(commands, "setting sysctls")

    def _link_batch(self, topology: Topology, plan: Sequence[_Attachment]) -> list[str]:
        """``ip -batch`` lines for bridges and veth pairs, run in the switch's namespace."""
        lines: list[str] = []
        for k in range(len(topology.networks)):
            br = bridge_name(self.run_id, k)
            lines += [f"link add name {br} {BRIDGE_OPTIONS}", f"link set dev {br} up"]
        for a in plan:
            ns = _check_token(ns_name(self.run_id, a.node))
            lines += [
                # The peer is born inside the node, so no temporary name is ever needed.
                f"link add name {a.veth} type veth peer name {a.ifname} netns {ns}",
                f"link set dev {a.veth} master {a.bridge} up",
            ]
        return lines

    def _configure_nodes(self, topology: Topology, plan: Sequence[_Attachment]) -> None:
        """Inside each namespace: lo up, addresses, interfaces up, default route."""
        commands: list[tuple[list[str], str | None]] = []
        for node in topology.nodes:
            lines = ["link set dev lo up"]
            for a in plan:
                if a.node == node.name:
                    lines += [
                        f"address add {_check_token(a.cidr)} dev {a.ifname}",
                        f"link set dev {a.ifname} up",
                    ]
            if node.gateway is not None:
                lines.append(f"route add default via {_check_token(str(node.gateway))}")
            text = "".join(line + "\n" for line in lines)
            commands.append((["ip", "-n", ns_name(self.run_id, node.name), "-batch", "-"], text))
        _run_parallel(commands, "configuring nodes")
