"""The netns backend class: nodes are network namespaces on this host (see the package doc)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import lab
from lab.errors import BackendError, CommandTimeout
from lab.run.backends import kernel
from lab.run.backends.base import (
    RUN_ID_RE,
    Backend,
    Completed,
    Owner,
    Proc,
    copy_missing,
    node_of,
)
from lab.run.backends.netns import build
from lab.run.backends.netns.enter import popen_in
from lab.run.backends.netns.names import (
    BASE_DIR,
    NETNS_DIR,
    OWNER_FILE,
    SWITCH,
    lab_links,
    lab_namespaces,
    link_rid,
    ns_name,
    ns_rid,
    run_dirs,
)
from lab.run.backends.netns.nonetem import NO_NETEM_NOTE, netem_problems
from lab.run.backends.netns.proc import NetnsProc, kill_group, wait_for_exec
from lab.run.backends.netns.teardown import remove_run, run_processes
from lab.spec.model import Node, Topology
from lab.spec.netem import Direction, Netem

# Every variable that picks a language or a locale for the node's commands.
_LOCALE_VARS = frozenset(
    {"LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LC_CTYPE", "LC_NUMERIC", "LC_TIME"}
)


class NetnsBackend(Backend):
    """Nodes are network namespaces on this host, networks are Linux bridges."""

    name = "netns"
    shares_process_table = True  # namespaces of the network only: one host's processes

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

    @classmethod
    def topology_problems(cls, topology: Topology) -> list[str]:
        # Every run id has the same length, so any one shows whether the names fit.
        try:
            build.plan("000000", topology)
        except BackendError as exc:
            return [str(exc)]
        return netem_problems(topology)

    @classmethod
    def impairment_note(cls, topology: Topology) -> str | None:
        steps = any(sc.impair for sc in topology.scenarios)
        if (topology.impairments or steps) and not kernel.kernel_has_netem():
            return NO_NETEM_NOTE
        return None

    def up(self, topology: Topology) -> None:
        self._topology = topology
        build.build_run(self.run_id, topology)

    def down(self) -> None:
        remove_run(self.run_id)

    def set_netem(self, node: str, network: str, direction: Direction, netem: Netem | None) -> None:
        # The qdiscs live on the run's veths: deleting the namespaces in down() takes them.
        topology = self._topology
        if topology is None:
            raise BackendError("the lab is not up")
        node_of(topology, node)
        build.set_netem(
            self.run_id, build.plan(self.run_id, topology), node, network, direction, netem
        )

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        if run_id is not None:
            return remove_run(run_id)
        removed: list[str] = []
        for rid in sorted(cls.leftover_runs()):
            removed += remove_run(rid)
        return removed

    @classmethod
    def leftover_runs(cls) -> set[str]:
        rids = {ns_rid(n) for n in lab_namespaces()}
        rids |= {link_rid(n) for n in lab_links()}
        return rids | set(run_dirs())

    @classmethod
    def owner(cls, run_id: str) -> Owner | None:
        if not RUN_ID_RE.match(run_id):
            return None
        try:
            data = json.loads((BASE_DIR / run_id / OWNER_FILE).read_text())
            start = data.get("start")
            return Owner(int(data["pid"]), int(start) if start is not None else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @classmethod
    def collect_leftovers(cls, run_id: str, out_dir: Path) -> list[str]:
        run_dir = BASE_DIR / run_id
        if not RUN_ID_RE.match(run_id) or not run_dir.is_dir():
            return []
        collected = []
        for node_dir in sorted(p for p in run_dir.iterdir() if p.is_dir()):
            count = copy_missing(node_dir, out_dir / node_dir.name)
            collected.append(f"{node_dir.name}: {count} file{'s' if count != 1 else ''}")
        return collected

    @classmethod
    def run_processes(cls, run_id: str) -> dict[int, str]:
        return run_processes(run_id)

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        counts: dict[str, int] = {}
        for name in lab_namespaces():
            rid = ns_rid(name)
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
            proc = self._popen(
                node,
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
            kill_group(proc)
            raise CommandTimeout(
                f"{' '.join(argv)} on {node} did not finish within {timeout:g} s"
            ) from None
        except BaseException:
            kill_group(proc)
            raise
        return Completed(tuple(argv), proc.returncode, out, err)

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        full = self._exec_argv(node, argv)
        path = Path(log)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as out:
                popen = self._popen(
                    node,
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
        wrapper = full if popen.args is full else None  # `ip netns exec`, or none
        wait_for_exec(popen, wrapper, NETNS_DIR / ns_name(self.run_id, node))
        return NetnsProc(node, argv, popen)

    def workdir(self, node: str) -> PurePosixPath:
        return PurePosixPath(BASE_DIR / self.run_id / node)

    def local_path(self, node: str, path: PurePosixPath) -> Path | None:
        # The nodes share this host's file system: a file of the run is where it says.
        self._node(node)
        local = Path(path)
        mine = local.is_relative_to(BASE_DIR / self.run_id / node) and ".." not in local.parts
        return local if mine else None

    def build_root(self) -> Path | None:
        # The nodes share this host's file system: a program built here runs on any node.
        return BASE_DIR / self.run_id

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

    def _popen(self, node: str, full: list[str], **options: Any) -> subprocess.Popen[Any]:
        """The command of ``full`` (``ip netns exec NS cmd...``) started straight inside
        the namespace (``enter.popen_in``); if that fails (the namespace gone, the program
        missing) through ``ip netns exec`` itself, which reports it as it always has: an
        exit status and a message, from the node."""
        try:
            return popen_in(NETNS_DIR / full[3], full[4:], **options)
        except OSError:
            return subprocess.Popen(full, **options)

    def _env(self) -> dict[str, str]:
        """The caller's environment, with the directory holding ``lab`` first on PYTHONPATH
        and the C locale (UTF-8): netstat, ss and ps must print the headers and words the
        snapshot readers know, whatever language the user's terminal speaks; a Docker node
        has no locale of its own either."""
        env = {k: v for k, v in os.environ.items() if k not in _LOCALE_VARS}
        env["LC_ALL"] = "C.UTF-8"
        src = str(Path(lab.__file__).resolve().parent.parent)
        parts = [src, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != src)]
        env["PYTHONPATH"] = os.pathsep.join(parts)
        return env

    def _cwd(self, node: str) -> str:
        # The node's own directory: relative paths land with its other files, and
        # `python -c` does not pick up modules from wherever the caller stood.
        wd = Path(self.workdir(node))
        return str(wd) if wd.is_dir() else "/"
