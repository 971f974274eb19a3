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
import stat
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from lab.errors import BackendError, CommandTimeout, UsageError
from lab.run.backends.base import (
    RUN_ID_RE,
    Backend,
    Completed,
    Owner,
    Proc,
    copy_missing,
    new_run_id,
    node_of,
)
from lab.run.backends.ssh import impair
from lab.run.backends.ssh.check import (
    check_hosts,
    connect_and_check,
    host_lines,
    key_base,
    unfit,
)
from lab.run.backends.ssh.cleanup import CleanIncomplete, clean_host, clean_recorded, parallel
from lab.run.backends.ssh.conn import Host, Options, default_known_hosts
from lab.run.backends.ssh.node import LAUNCHER, PYTHON, TAG, RemoteNode, SshProc
from lab.run.backends.ssh.prepare import make_root, new_root, upload_tree
from lab.run.backends.ssh.refusals import refusals
from lab.run.backends.ssh.state import (
    HostState,
    hosts_of,
    read_state,
    resolve_keys,
    state_dir,
    state_from,
    state_path,
    write_state,
)
from lab.spec.model import Node, Topology
from lab.spec.netem import Direction, Netem

__all__ = ["CleanIncomplete", "SshBackend"]


class SshBackend(Backend):
    """Nodes are existing hosts reached over SSH; networks are the LANs they are on."""

    name = "ssh"
    builds_on_nodes = True  # each host builds the user's programs it runs
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
        self._remotes: dict[str, RemoteNode] = {}
        self._states: dict[str, HostState] = {}
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

    @classmethod
    def topology_problems(cls, topology: Topology) -> list[str]:
        return refusals(topology)

    def up(self, topology: Topology) -> None:
        self._topology = topology
        refused = self.topology_problems(topology)
        if refused:  # the CLI says so before anything is created; a library caller here
            raise BackendError(refused[0])
        base = key_base(topology)
        for node in topology.nodes:
            assert node.ssh is not None
            self._states[node.name] = HostState(node.name, resolve_keys(node.ssh, base))
        self._save_state()
        problems: dict[str, str] = {}
        parallel(list(topology.nodes), lambda n: self._connect_and_check(n, problems))
        if problems:
            targets = {name: str(state.target) for name, state in self._states.items()}
            raise BackendError(unfit(host_lines(topology, problems, targets)))
        parallel(list(self._remotes.values()), self._prepare)

    @classmethod
    def host_problems(cls, topology: Topology) -> list[str]:
        """Pre-flight alone (see ``check.check_hosts``): nothing is made on the hosts."""
        options = Options(cls.known_hosts or default_known_hosts(), cls.accept_new)
        lines = check_hosts(topology, options, new_run_id())
        return [unfit(lines)] if lines else []

    def _connect_and_check(self, node: Node, problems: dict[str, str]) -> None:
        assert self._topology is not None
        state = self._states[node.name]
        r, found = connect_and_check(self.run_id, state, node, self._topology, self._options())
        if r is not None:
            with self._lock:
                self._remotes[node.name] = r
        if found:
            with self._lock:
                problems[node.name] = "; ".join(found)

    def _prepare(self, r: RemoteNode) -> None:
        """A private temp dir, recorded before it is made, then the programs uploaded."""
        root = new_root(self.run_id, r.state.node)
        with self._lock:
            r.state.root = root
            self._save_state_locked()
        make_root(r, root)

    def down(self) -> None:
        errors: list[str] = []

        def clean_one(r: RemoteNode) -> None:
            try:
                clean_host(r, self.run_id)
            except BackendError as exc:
                errors.append(str(exc))
            else:
                # Verified gone: a Proc asked afterwards answers without the connection.
                for proc in self._procs:
                    if proc.node == r.state.node:
                        proc.reaped()
            finally:
                r.host.close()

        parallel(list(self._remotes.values()), clean_one)
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
            state_path(self.run_id).unlink()
        self._states = {}

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        if run_id is not None:
            paths = [state_path(run_id)] if state_path(run_id).exists() else []
        else:
            paths = sorted(state_dir().glob("*.json")) if state_dir().is_dir() else []
        removed: list[str] = []
        errors: list[str] = []
        for path in paths:  # every run, whichever fails: one unreachable host stops none
            rid = path.stem
            if not RUN_ID_RE.match(rid):
                continue
            done, failed = clean_recorded(rid, read_state(path) or {})
            removed += done
            errors += [f"run {rid}: {e}" for e in failed]
            if not failed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        if errors:
            raise CleanIncomplete(removed, errors)
        return removed

    @classmethod
    def collect_leftovers(cls, run_id: str, out_dir: Path) -> list[str]:
        """Each recorded host's work folder, over SFTP; a host that does not answer is
        named in the list (its files stay there, for a later clean)."""
        data = read_state(state_path(run_id)) if RUN_ID_RE.match(run_id) else None
        known = Path((data or {}).get("known_hosts") or default_known_hosts())
        collected = []
        for node, info in sorted((data or {}).get("hosts", {}).items()):
            state = state_from(node, info)
            if state.root is None:
                continue
            try:
                host = Host(state.target, Options(known))
                try:
                    with tempfile.TemporaryDirectory() as tmp, host.sftp() as sftp:
                        _get_tree(sftp, f"{state.root}/work", Path(tmp), node)
                        count = copy_missing(Path(tmp), out_dir / node)
                finally:
                    host.close()
            except (BackendError, OSError) as exc:
                collected.append(f"{node}: not collected ({exc})")
                continue
            collected.append(f"{node}: {count} file{'s' if count != 1 else ''}")
        return collected

    @classmethod
    def owner(cls, run_id: str) -> Owner | None:
        data = read_state(state_path(run_id)) if RUN_ID_RE.match(run_id) else None
        if data is None:
            return None
        try:
            start = data.get("pid_start")
            return Owner(int(data["pid"]), int(start) if start is not None else None)
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        labs: dict[str, str] = {}
        for path in sorted(state_dir().glob("*.json")) if state_dir().is_dir() else []:
            data = read_state(path)
            if data is None or not RUN_ID_RE.match(path.stem):
                continue
            hosts = hosts_of(data)
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

    def program_dir(self, node: str, name: str) -> PurePosixPath:
        return self._remote(node).root / "programs" / name

    def upload(self, node: str, sources: Sequence[Path], folder: PurePosixPath) -> None:
        upload_tree(self._remote(node), sources, folder)

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

    def set_netem(self, node: str, network: str, direction: Direction, netem: Netem | None) -> None:
        r = self._remote(node)
        if network not in r.ifaces:
            raise UsageError(f"node {node} has no interface on network {network!r}")
        impair.set_netem(r, r.ifaces[network], direction, netem, self._save_state)

    def interfaces(self, node: str) -> Mapping[str, str]:
        return dict(self._remote(node).ifaces)

    def node_info(self, node: str) -> Mapping[str, str]:
        state = self._states.get(node)
        return {"host": str(state.target)} if state is not None else {}

    # -- helpers -----------------------------------------------------------------------
    def _node(self, node: str) -> Node:
        return node_of(self._topology, node)

    def _remote(self, node: str) -> RemoteNode:
        self._node(node)
        r = self._remotes.get(node)
        if r is None:
            raise BackendError(f"node {node} is not connected")
        return r

    def _save_state(self) -> None:
        with self._lock:
            self._save_state_locked()

    def _save_state_locked(self) -> None:
        write_state(self.run_id, self._known_hosts, self._states)


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
