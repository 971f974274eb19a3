"""The ssh backend: every node is an existing host, reached over SSH with paramiko.

Nothing is created on the network: the topology's networks describe the existing LAN and
each node's address is its host's real address (checked at bring-up). What a run puts on
a host is its own, and found again by the run id alone:

- a private temp dir ``/tmp/socket-lab-ssh-<rid>-<node>.XXXXXXXX`` holding the uploaded
  stdlib-only programs (``lib/lab``), the node's files (``work/``, its ``workdir``) and
  the exit statuses of background processes (``proc/``);
- processes, each started with ``SOCKET_LAB_RUN=<rid>`` and ``SOCKET_LAB_NODE=<rid>-<node>``
  in its environment (inherited by its children), background ones also recorded as PID +
  start time.

A state file per run (``$SOCKET_LAB_STATE/ssh/<rid>.json``, default ``/run/socket-lab``)
records the targets, temp dirs and processes, so that ``clean`` / ``running_labs`` work
from a new process after the owner was killed. Teardown stops processes by the marker
and by recorded PIDs whose start time still matches, never by a bare number.

Every command reaches the host's shell as ``cd DIR && exec [sudo -n] env ... ARGV`` with
each argument quoted by ``shlex.quote``. A user other than root needs passwordless sudo
(tcpdump needs root).

Each command starts the user's login shell on the host, which can cost far more than the
command (a root ~/.bashrc running ``pyenv init``): the backend's own work takes few.
Pre-flight is one command per host; the temp dir is made and background processes'
states are read over SFTP (one request each on a session kept open); programs run with
the interpreter's real path found at pre-flight, not through a version manager's shim.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import stat
import string
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import lab
from lab.errors import BackendError, CommandTimeout
from lab.run.backends.base import RUN_ID_RE, Backend, Completed, Proc, node_of
from lab.run.backends.ssh import remote
from lab.run.backends.ssh.conn import Host, HostLost, Options, default_known_hosts
from lab.spec.model import Node, SshTarget, Topology

MARK = "SOCKET_LAB_RUN"  # environment marker of every process of a run
# ... and of its node: two nodes may be one machine, and a node's teardown must spare
# the processes of a node that could not be reached (they are reported, not guessed at).
NODE_MARK = "SOCKET_LAB_NODE"
TAG = "SOCKET_LAB_TAG"  # environment marker of one foreground command
PYTHON = "python3"  # argv[0] that stands for the node's own interpreter
LAUNCHER = "socket_lab_launch.py"  # remote.LAUNCH, uploaded into lib/
MIN_PYTHON = (3, 11)
PARALLEL = 8  # hosts connected to / checked / cleaned at once
PREFLIGHT_TIMEOUT = 20.0
ROOT_RE = re.compile(r"^/tmp/socket-lab-ssh-[0-9a-f]{6}-[a-z0-9-]+\.[A-Za-z0-9]+$")

_T = TypeVar("_T")


class CleanIncomplete(BackendError):
    """``clean`` removed what it could reach; ``problems`` names each host it could not
    (one line each), ``removed`` what it did remove."""

    def __init__(self, removed: list[str], problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.removed = removed
        self.problems = problems


def state_dir() -> Path:
    return Path(os.environ.get("SOCKET_LAB_STATE", "/run/socket-lab")) / "ssh"


def _state_path(run_id: str) -> Path:
    return state_dir() / f"{run_id}.json"


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _target_from(data: Mapping[str, Any]) -> SshTarget:
    jump = data.get("jump")
    fields = {k: v for k, v in data.items() if k != "jump"}
    return SshTarget(**fields, jump=_target_from(jump) if jump else None)


def _parallel(items: Sequence[_T], work: Callable[[_T], None]) -> None:
    """Run ``work`` on every item, a few at a time; the first exception goes on."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(items))) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def _upload_files() -> list[tuple[Path, str]]:
    """The stdlib-only part of the package a node needs: ``lab/__init__.py`` and
    ``lab/programs`` (code and the dictionary), as (local file, path under lib/)."""
    package = Path(lab.__file__).resolve().parent
    files = [(package / "__init__.py", "lab/__init__.py")]
    for path in sorted((package / "programs").iterdir()):
        if path.is_file() and path.suffix in (".py", ".tsv"):
            files.append((path, f"lab/programs/{path.name}"))
    return files


@dataclass
class _HostState:
    """What a run has put on one host; mirrored in the state file."""

    node: str
    target: SshTarget
    sudo: bool = False
    root: str | None = None
    python: str | None = None  # the interpreter's real path, learnt at pre-flight
    procs: list[tuple[int, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": asdict(self.target),
            "sudo": self.sudo,
            "root": self.root,
            "python": self.python,
            "procs": [list(p) for p in self.procs],
        }


class _Remote:
    """A connected host of a run: builds the command lines that run on it."""

    def __init__(self, run_id: str, state: _HostState, host: Host) -> None:
        self.run_id = run_id
        self.state = state
        self.host = host
        self.ifaces: dict[str, str] = {}

    @property
    def root(self) -> PurePosixPath:
        if self.state.root is None:
            raise BackendError(f"node {self.state.node}: the lab is not up")
        return PurePosixPath(self.state.root)

    def command(
        self, argv: Sequence[str], *, cwd: PurePosixPath | None = None, env: Sequence[str] = ()
    ) -> str:
        """The shell line for ``argv``: every word quoted, nothing from a value unquoted."""
        if not argv:
            raise BackendError("empty command")
        words = self.interpreted(argv)
        prefix = ["sudo", "-n", "--"] if self.state.sudo else []
        if env:
            prefix += ["env", *env]
        line = "exec " + " ".join(shlex.quote(w) for w in [*prefix, *words])
        return f"cd {shlex.quote(str(cwd))} && {line}" if cwd is not None else line

    def interpreted(self, argv: Sequence[str]) -> list[str]:
        """``argv`` with PYTHON as the host's interpreter: its real path once known, so
        that a version manager's shim (pyenv) is not started again for every command."""
        words = list(argv)
        if words and words[0] == PYTHON:
            words[0] = self.state.python or self.state.target.python
        return words

    def lab_env(self, *extra: str) -> list[str]:
        return [
            f"{MARK}={self.run_id}",
            self.node_marker(),
            f"PYTHONPATH={self.root / 'lib'}",
            *extra,
        ]

    def node_marker(self) -> str:
        return f"{NODE_MARK}={self.run_id}-{self.state.node}"

    def check(self, argv: Sequence[str], what: str, *, timeout: float = 30.0) -> str:
        """Run a helper; its stdout, or a BackendError naming the node and ``what``."""
        done = self.host.execute(self.command(argv), timeout=timeout)
        if done is None:
            raise BackendError(f"node {self.state.node}: {what} did not finish in {timeout:g} s")
        code, out, err = done
        if code != 0:
            text = (err or out).decode(errors="replace").strip()[-500:]
            raise BackendError(f"node {self.state.node}: {what} failed ({code}): {text}")
        return out.decode(errors="replace")

    def reap(self, marker: str, root: str) -> dict[str, Any]:
        pairs = [f"{pid}:{start}" for pid, start in self.state.procs]
        argv = [PYTHON, "-c", remote.REAP, marker, root, *pairs]
        result: dict[str, Any] = json.loads(self.check(argv, "stopping the run's processes"))
        return result


class SshProc(Proc):
    """A background process on a host, known by PID and start time; a monitor on the
    host keeps its exit status in the run's temp dir."""

    def __init__(
        self, r: _Remote, node: str, argv: Sequence[str], pid: int, start: str, status: str
    ) -> None:
        self._r = r
        self.node = node
        self.argv = tuple(argv)
        self._pid = pid
        self._start = start
        self._status = status
        self._exit: int | None = None

    @property
    def pid(self) -> int:
        return self._pid

    def _poll(self) -> int | None:
        """Read over SFTP, no command: the status file its monitor writes when it ends,
        else whether ``/proc/PID`` is still this process. Once ended, its status is
        waited for briefly; none means its monitor was killed with it (teardown, clean)."""
        if self._exit is not None:
            return self._exit
        host = self._r.host
        deadline = time.monotonic() + 1.0
        while True:
            text = host.read_file(self._status)
            if text is not None and text.strip():
                self._exit = int(text.strip())
                return self._exit
            if remote.alive_in_stat(host.read_file(f"/proc/{self._pid}/stat"), self._start):
                return None
            if time.monotonic() > deadline:
                self._exit = -9
                return self._exit
            time.sleep(0.01)

    def running(self) -> bool:
        return self._poll() is None

    def reaped(self) -> None:
        """Teardown stopped it (SIGTERM, then SIGKILL if need be) and saw it gone."""
        if self._exit is None:
            self._exit = -9

    def signal(self, signum: int) -> None:
        if self._exit is not None:
            return
        argv = [PYTHON, "-c", remote.SIGNAL, str(self._pid), self._start, str(int(signum))]
        self._r.check(argv, f"signalling process {self._pid}")

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + max(timeout, 0)
        interval = 0.02
        while True:
            status = self._poll()
            if status is not None or time.monotonic() >= deadline:
                return status
            time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
            interval = min(interval * 1.5, 0.25)


class SshBackend(Backend):
    """Nodes are existing hosts reached over SSH; networks are the LANs they are on."""

    name = "ssh"
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts
    accept_new: bool = False

    @classmethod
    def configured(
        cls, *, known_hosts: Path | None = None, accept_new: bool = False
    ) -> type[SshBackend]:
        """This backend with host-key options (the session makes backends from a class)."""
        attrs = {"known_hosts": known_hosts, "accept_new": accept_new}
        return type(cls.__name__, (cls,), attrs)

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self._topology: Topology | None = None
        self._remotes: dict[str, _Remote] = {}
        self._states: dict[str, _HostState] = {}
        self._lock = threading.Lock()
        self._spawned = 0
        self._procs: list[SshProc] = []
        self._known_hosts = self.known_hosts or default_known_hosts()

    def _options(self) -> Options:
        return Options(self._known_hosts, self.accept_new)

    # -- lifecycle ---------------------------------------------------------------------
    @classmethod
    def available(cls) -> str | None:
        try:
            import paramiko  # noqa: F401
        except ImportError:
            return "the ssh backend needs paramiko: pip install paramiko"
        return None

    def up(self, topology: Topology) -> None:
        self._topology = topology
        without = [n.name for n in topology.nodes if n.ssh is None]
        if without:
            raise BackendError(
                f"the ssh backend needs an ssh target on every node; none on {', '.join(without)}"
                " (add `ssh: {host: ...}`, see topologies/README.md)"
            )
        base = topology.source.resolve().parent if topology.source else Path.cwd()
        for node in topology.nodes:
            assert node.ssh is not None
            self._states[node.name] = _HostState(node.name, _resolve_keys(node.ssh, base))
        self._save_state()
        problems: dict[str, str] = {}
        _parallel(list(topology.nodes), lambda n: self._connect_and_check(n, problems))
        if problems:
            lines = [
                f"  node {name} ({self._states[name].target}): {problems[name]}"
                for name in (n.name for n in topology.nodes)
                if name in problems
            ]
            count = len(lines)
            raise BackendError(
                f"{count} host{'s' if count != 1 else ''} cannot run the lab; nothing was "
                "started:\n" + "\n".join(lines)
            )
        _parallel(list(self._remotes.values()), self._prepare)

    def _connect_and_check(self, node: Node, problems: dict[str, str]) -> None:
        state = self._states[node.name]
        try:
            host = Host(state.target, self._options())
        except BackendError as exc:
            problems[node.name] = str(exc)
            return
        r = _Remote(self.run_id, state, host)
        with self._lock:
            self._remotes[node.name] = r
        try:
            found = _preflight(r, node)
        except BackendError as exc:
            found = [str(exc)]
        if found:
            problems[node.name] = "; ".join(found)

    def _prepare(self, r: _Remote) -> None:
        """A private temp dir, recorded before it is made, then the programs uploaded into
        it. Made like ``mktemp -d`` (a random name, mode 0700, refused if it exists) but
        over SFTP, which costs no command (and no login shell) on the host."""
        suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))
        root = f"/tmp/socket-lab-ssh-{self.run_id}-{r.state.node}.{suffix}"
        assert ROOT_RE.match(root), root
        with self._lock:
            r.state.root = root
            self._save_state_locked()
        with r.host.sftp() as sftp:
            try:
                sftp.mkdir(root, 0o700)
            except OSError as exc:
                raise BackendError(f"node {r.state.node}: cannot make {root}: {exc}") from None
            for sub in ("lib", "lib/lab", "lib/lab/programs", "work", "proc"):
                sftp.mkdir(f"{root}/{sub}", 0o755)
            for local, rel in _upload_files():
                sftp.put(str(local), f"{root}/lib/{rel}")
            # As a file rather than `-c TEXT`: ps on the host then shows a short line.
            with sftp.open(f"{root}/lib/{LAUNCHER}", "w") as f:
                f.write(remote.LAUNCH)

    def down(self) -> None:
        errors: list[str] = []

        def clean_one(r: _Remote) -> None:
            try:
                _clean_host(r, self.run_id)
            except BackendError as exc:
                errors.append(str(exc))
            else:
                # Verified gone: a Proc asked afterwards answers without the connection.
                for proc in self._procs:
                    if proc.node == r.state.node:
                        proc.reaped()
            finally:
                r.host.close()

        _parallel(list(self._remotes.values()), clean_one)
        self._remotes = {}
        if errors:
            with self._lock:
                self._save_state_locked()
            raise BackendError(
                "; ".join(sorted(errors))
                + f" — its leftovers remain: run `lab clean --run-id {self.run_id}` once it "
                "is reachable again"
            )
        with contextlib.suppress(FileNotFoundError):
            _state_path(self.run_id).unlink()
        self._states = {}

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        if run_id is not None:
            paths = [_state_path(run_id)] if _state_path(run_id).exists() else []
        else:
            paths = sorted(state_dir().glob("*.json")) if state_dir().is_dir() else []
        removed: list[str] = []
        errors: list[str] = []
        for path in paths:  # every run, whichever fails: one unreachable host stops none
            rid = path.stem
            if not RUN_ID_RE.match(rid):
                continue
            done, failed = _clean_recorded(rid, _read_state(path) or {})
            removed += done
            errors += [f"run {rid}: {e}" for e in failed]
            if not failed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        if errors:
            raise CleanIncomplete(removed, errors)
        return removed

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        labs: dict[str, str] = {}
        for path in sorted(state_dir().glob("*.json")) if state_dir().is_dir() else []:
            data = _read_state(path)
            if data is None or not RUN_ID_RE.match(path.stem):
                continue
            hosts = _hosts_of(data)
            labs[path.stem] = f"hosts {', '.join(hosts)}" if hosts else "no hosts"
        return labs

    # -- on a node ---------------------------------------------------------------------
    @property
    def python(self) -> str:
        return PYTHON

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        r = self._remote(node)
        with self._lock:
            self._spawned += 1
            tag = f"{self.run_id}-{self._spawned}"
        line = r.command(argv, cwd=r.root / "work", env=r.lab_env(f"{TAG}={tag}"))
        data = input.encode() if input is not None else None
        done = r.host.execute(line, timeout=timeout, input=data)
        if done is None:
            r.reap(f"{TAG}={tag}", "")
            raise CommandTimeout(f"{' '.join(argv)} on {node} did not finish within {timeout:g} s")
        code, out, err = done
        return Completed(
            tuple(argv), code, out.decode(errors="replace"), err.decode(errors="replace")
        )

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        r = self._remote(node)
        with self._lock:
            self._spawned += 1
            status = str(r.root / "proc" / f"{self._spawned}.status")
        words = r.interpreted(argv)
        launch = [PYTHON, str(r.root / "lib" / LAUNCHER), status, str(log), *words]
        line = r.command(launch, cwd=r.root / "work", env=r.lab_env())
        done = r.host.execute(line, timeout=30.0)
        if done is None or done[0] != 0:
            detail = done[2].decode(errors="replace").strip() if done else "timed out"
            raise BackendError(f"cannot start {argv[0]!r} on {node}: {detail}")
        pid_text, start = done[1].decode().split()
        with self._lock:
            r.state.procs.append((int(pid_text), start))
            self._save_state_locked()
        proc = SshProc(r, node, argv, int(pid_text), start, status)
        self._procs.append(proc)
        return proc

    def workdir(self, node: str) -> PurePosixPath:
        self._node(node)
        r = self._remotes.get(node)
        if r is None or r.state.root is None:
            # up() stopped before this node's temp dir was made: a name that holds nothing,
            # so that collecting after a refused pre-flight is quiet (fetch finds nothing).
            return PurePosixPath(f"/tmp/socket-lab-ssh-{self.run_id}-{node}.unmade/work")
        return r.root / "work"

    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        r = self._remotes.get(node)
        if r is None or r.state.root is None:
            # An interrupted up() made nothing there: nothing to fetch, which is no error.
            self._node(node)
            local_dir.mkdir(parents=True, exist_ok=True)
            return
        local_dir.mkdir(parents=True, exist_ok=True)
        with r.host.sftp() as sftp:
            _get_tree(sftp, str(remote_dir), local_dir, node)

    def interfaces(self, node: str) -> Mapping[str, str]:
        return dict(self._remote(node).ifaces)

    def node_info(self, node: str) -> Mapping[str, str]:
        state = self._states.get(node)
        return {"host": str(state.target)} if state is not None else {}

    # -- helpers -----------------------------------------------------------------------
    def _node(self, node: str) -> Node:
        return node_of(self._topology, node)

    def _remote(self, node: str) -> _Remote:
        self._node(node)
        r = self._remotes.get(node)
        if r is None:
            raise BackendError(f"node {node} is not connected")
        return r

    def _save_state(self) -> None:
        with self._lock:
            self._save_state_locked()

    def _save_state_locked(self) -> None:
        data = {
            "run_id": self.run_id,
            "pid": os.getpid(),
            "known_hosts": str(self._known_hosts),
            "hosts": {name: s.to_json() for name, s in self._states.items()},
        }
        folder = state_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f".{self.run_id}.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, _state_path(self.run_id))


def _hosts_of(data: Mapping[str, Any]) -> list[str]:
    """``node=user@host:port`` for each host a state file records."""
    hosts = []
    for node, info in sorted(data.get("hosts", {}).items()):
        try:
            hosts.append(f"{node}={_target_from(info['target'])}")
        except (KeyError, TypeError):
            hosts.append(f"{node}=?")
    return hosts


def _resolve_keys(target: SshTarget, base: Path) -> SshTarget:
    """Key paths made absolute: ``~`` expanded, relative ones from the topology's folder."""
    from dataclasses import replace

    key = str(base / Path(target.key).expanduser()) if target.key else None
    jump = _resolve_keys(target.jump, base) if target.jump else None
    return replace(target, key=key, jump=jump)


def _preflight(r: _Remote, node: Node) -> list[str]:
    """Everything this host lacks for the lab, all of it, from one command; also learns
    its interfaces, whether commands need sudo, and the interpreter's real path."""
    python = r.state.target.python
    argv = ["sh", "-c", remote.PREFLIGHT, "sh", python]
    found = remote.parse_preflight(r.check(argv, "pre-flight", timeout=PREFLIGHT_TIMEOUT))
    problems: list[str] = []
    user = r.state.target.user
    if found.access == "sudo":
        r.state.sudo = True
    elif found.access != "root":
        problems.append(
            f"user {user!r} needs root or passwordless sudo (tcpdump needs root): log in "
            f"as root, or allow `{user} ALL=(ALL) NOPASSWD: ALL` in sudoers"
        )
    if found.missing:
        packages = " ".join(sorted({remote.TOOL_PACKAGES[t] for t in found.missing}))
        problems.append(f"missing {', '.join(found.missing)}: apt-get install {packages}")
    version = found.version
    if version is None:
        problems.append(f"no Python at {python!r}: install python3 (>= 3.11) or set ssh.python")
        return problems
    if tuple(int(x) for x in version.split(".")) < MIN_PYTHON:
        problems.append(
            f"{python} is Python {version}; the lab needs 3.11 or newer: install it or point "
            "ssh.python at one"
        )
        return problems
    r.state.python = found.executable or None
    for iface in node.interfaces:
        name = found.addresses.get(str(iface.address))
        if name is None:
            problems.append(
                f"no interface has address {iface.address} (network {iface.network}): give "
                "the host's real address in the topology"
            )
        else:
            r.ifaces[iface.network] = name
    if node.gateway is not None and found.gateway != str(node.gateway):
        problems.append(
            f"its default route is via {found.gateway or 'nothing'}, not the topology's "
            f"gateway {node.gateway}"
        )
    return problems


def _clean_host(r: _Remote, run_id: str) -> list[str]:
    """Stop the run's processes on one host and remove its temp dir; what was removed."""
    if r.host.lost is not None:
        raise HostLost(f"node {r.state.node}: host {r.state.target} is unreachable ({r.host.lost})")
    if r.state.root is None and not r.state.procs:
        return []  # up() stopped before the temp dir: no command of the run ever ran there
    root = r.state.root or ""
    result = r.reap(r.node_marker(), root)
    if result["left"]:
        raise BackendError(
            f"node {r.state.node}: processes {result['left']} of run {run_id} would not stop"
        )
    if root and not result["removed"]:
        # reap removes only an existing dir; make sure it is gone, not just unremovable
        done = r.host.execute(r.command(["test", "-e", root]), timeout=PREFLIGHT_TIMEOUT)
        if done is not None and done[0] == 0:
            raise BackendError(f"node {r.state.node}: could not remove {root}")
    items = [f"{r.state.target}: process {pid}" for pid in result["killed"]]
    if result["removed"]:
        items.append(f"{r.state.target}: directory {root}")
    r.state.root = None
    r.state.procs = []
    return items


def _clean_recorded(run_id: str, data: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Clean what a state file records, from a process that did not make it."""
    known = Path(data.get("known_hosts") or default_known_hosts())
    removed: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(item: tuple[str, Mapping[str, Any]]) -> None:
        node, info = item
        state = _HostState(
            node,
            _target_from(info["target"]),
            sudo=bool(info.get("sudo")),
            root=info.get("root"),
            python=info.get("python"),
            procs=[(int(p), str(s)) for p, s in info.get("procs", [])],
        )
        if state.root is None and not state.procs:
            return  # nothing was put there
        try:
            host = Host(state.target, Options(known))
        except BackendError as exc:
            with lock:
                errors.append(f"node {node} ({state.target}): {exc}")
            return
        try:
            items = _clean_host(_Remote(run_id, state, host), run_id)
            with lock:
                removed.extend(items)
        except BackendError as exc:
            with lock:
                errors.append(str(exc))
        finally:
            host.close()

    _parallel(list(data.get("hosts", {}).items()), one)
    return removed, errors


def _get_tree(sftp: Any, remote_dir: str, local_dir: Path, node: str) -> None:
    """Copy a remote directory's regular files and subdirectories (not symlinks)."""
    try:
        entries = sftp.listdir_attr(remote_dir)
    except FileNotFoundError:
        raise BackendError(f"{remote_dir} on {node} is not a directory") from None
    for entry in entries:
        source = f"{remote_dir}/{entry.filename}"
        target = local_dir / entry.filename
        mode = entry.st_mode or 0
        if stat.S_ISDIR(mode):
            target.mkdir(exist_ok=True)
            _get_tree(sftp, source, target, node)
        elif stat.S_ISREG(mode):
            sftp.get(source, str(target))
