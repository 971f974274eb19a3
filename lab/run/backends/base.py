"""The backend contract: the one small interface every backend (netns, docker, ssh) implements.

Everything the lab does reduces to "run a command on node N": servers, tcpdump, netstat,
clients, and all analysis are written once above this interface. A backend only knows how
to bring hosts up and down, run a command on a node (in the foreground with a timeout, or
in the background with a handle to stop it), and copy a node's files out.

Rules every backend keeps:
- Commands are argument lists, never shell strings; no topology value reaches a shell.
- Every object a backend creates carries the run id (in its name or as a label), and
  ``down`` / ``clean`` remove only objects that carry it.
- ``down`` is idempotent and works after a partial or failed ``up``.
- ``lab`` is importable by ``[backend.python, "-m", "lab.programs.<name>"]`` on every node.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from signal import SIGKILL, SIGTERM

from lab.errors import BackendError, UsageError
from lab.spec.model import Node, Topology
from lab.spec.netem import Direction, Netem

RUN_ID_RE = re.compile(r"^[0-9a-f]{6}$")


def new_run_id() -> str:
    """Six hex digits: short enough to fit in Linux's 15-character interface names. From
    os.urandom, as secrets does: importing secrets loads OpenSSL's hashes (5 ms a run)."""
    return os.urandom(3).hex()


def node_of(topology: Topology | None, node: str) -> Node:
    """The node named ``node`` of a backend's topology, as a ``BackendError`` when the lab is
    not up or has no such node."""
    if topology is None:
        raise BackendError("the lab is not up")
    try:
        return topology.node(node)
    except KeyError:
        raise BackendError(f"no node {node!r} in this lab") from None


def process_start(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (None: no such process)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Owner:
    """The process that made a run's objects: its PID and start time (clock ticks since
    boot; None where not recorded), so that a reused PID does not pass for it."""

    pid: int
    start: int | None = None

    @classmethod
    def me(cls) -> Owner:
        return cls(os.getpid(), process_start(os.getpid()))

    def alive(self) -> bool:
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        if self.start is None:  # not recorded: the PID alone decides
            return True
        now = process_start(self.pid)
        # None: gone since the signal, or hidden by /proc's hidepid; counted alive, the
        # side on which cleanup never takes a running lab's objects.
        return now is None or now == self.start


def copy_missing(source: Path, dest: Path) -> int:
    """Copy the regular files under ``source`` into ``dest`` that ``dest`` does not have
    yet (links and special files are skipped); how many were copied."""
    copied = 0
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        target = dest / path.relative_to(source)
        if target.exists() or target.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied += 1
    return copied


@dataclass(frozen=True)
class Completed:
    """A finished foreground command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Proc(ABC):
    """A background process on a node, started by ``Backend.spawn``."""

    node: str
    argv: tuple[str, ...]

    @property
    @abstractmethod
    def pid(self) -> int:
        """The PID as ``ps`` on that node shows it."""

    @abstractmethod
    def running(self) -> bool:
        """True while the process has not exited."""

    @abstractmethod
    def signal(self, signum: int) -> None:
        """Send a signal to the process (not to its children). No error if it has exited."""

    @abstractmethod
    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds; the exit status, or None if still running.
        A status is the process's exit code, or minus the signal number that ended it."""

    def stop(self, timeout: float = 5.0, signum: int = SIGTERM) -> int | None:
        """Ask the process to stop, wait, then kill it. Returns its exit status."""
        if not self.running():
            return self.wait(0)
        self.signal(signum)
        status = self.wait(timeout)
        if status is None:
            self.signal(SIGKILL)
            status = self.wait(timeout)
        return status


class Backend(ABC):
    """Brings a topology's hosts up and down and runs commands on them."""

    name: str = "base"
    # The user's programs are built on each node that runs them (``program_dir``, ``upload``)
    # rather than once on this host (``build_root``).
    builds_on_nodes: bool = False
    # Every node sees the same processes (the netns nodes share this host's PID namespace):
    # a snapshot's ps is then taken on one node and kept for each (``lab.run.collect``).
    shares_process_table: bool = False

    def __init__(self, run_id: str) -> None:
        if not RUN_ID_RE.match(run_id):
            raise ValueError(f"run id must be six hex digits, got {run_id!r}")
        self.run_id = run_id

    # -- lifecycle ---------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def available(cls) -> str | None:
        """None if this backend can be used here, else a one-line reason with what to do."""

    @classmethod
    def topology_problems(cls, topology: Topology) -> list[str]:
        """Why this backend cannot run ``topology`` at all, whatever the hosts: bad input,
        said before anything (results folder, namespace, container) is created."""
        return []

    @classmethod
    def host_problems(cls, topology: Topology) -> list[str]:
        """What keeps existing hosts from running ``topology`` (unreachable, a tool or a
        compiler missing, a service's port taken), found by looking at them and leaving
        nothing there; empty for a backend that makes its own hosts."""
        return []

    @classmethod
    def impairment_note(cls, topology: Topology) -> str | None:
        """How this backend makes the topology's impairments when not with netem, said
        in the run's progress; None when there is nothing unusual to say."""
        return None

    @abstractmethod
    def up(self, topology: Topology) -> None:
        """Create every host, network and link of the topology, addresses and routes set,
        routers forwarding. On failure raise ``BackendError``; the caller then calls down()."""

    @abstractmethod
    def down(self) -> None:
        """Stop every process of this run and remove every object it created. Idempotent."""

    @classmethod
    @abstractmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        """Remove leftovers of one run (or of every run) of this backend, found by their
        name prefix or label, not by anything this process remembers. Returns what it
        removed, one human-readable item each."""

    @classmethod
    @abstractmethod
    def running_labs(cls) -> Mapping[str, str]:
        """Run ids of this backend's labs that still have objects, with a short description."""

    @classmethod
    def leftover_runs(cls) -> set[str]:
        """Run ids with any object of this backend left (what ``clean()`` with no run id
        would remove); by default those of ``running_labs``."""
        return set(cls.running_labs())

    @classmethod
    def owner(cls, run_id: str) -> Owner | None:
        """The process that made this run's objects, as the objects record it (None: they
        do not say). Lets ``lab clean`` spare a live run that is not in the registry."""
        return None

    @classmethod
    def collect_leftovers(cls, run_id: str, out_dir: Path) -> list[str]:
        """Copy what a run's nodes still hold (captures, logs, snapshots) into ``<out_dir>/
        <node>/``, for a run whose owner can no longer fetch it; a file already there is
        kept as it is. Returns what was copied, one item per node. Nothing by default."""
        return []

    @classmethod
    def run_processes(cls, run_id: str) -> dict[int, str]:
        """This machine's live processes of a run (PID -> command line), the ones
        ``clean`` waits for; none by default (a backend whose processes are elsewhere)."""
        return {}

    # -- on a node ---------------------------------------------------------------------
    @property
    @abstractmethod
    def python(self) -> str:
        """The Python interpreter on the nodes, for ``[python, "-m", "lab.programs.x"]``."""

    @abstractmethod
    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        """Run a command on a node in the foreground. Raises ``CommandTimeout`` (after
        killing the command) when it does not finish in time. A non-zero exit is not an
        error: look at ``Completed.returncode``."""

    @abstractmethod
    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        """Start a command in the background on a node; its stdout and stderr go to ``log``,
        a path on the node (normally under ``workdir``)."""

    @abstractmethod
    def workdir(self, node: str) -> PurePosixPath:
        """A directory on the node, private to this run, where logs and captures go.
        It exists once ``up`` has returned."""

    @abstractmethod
    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        """Copy the files under ``remote_dir`` on the node into ``local_dir`` (created)."""

    @abstractmethod
    def interfaces(self, node: str) -> Mapping[str, str]:
        """The node's interface name for each network it is attached to."""

    def local_path(self, node: str, path: PurePosixPath) -> Path | None:
        """Where a file of the node (under its ``workdir``) is on this host, when the
        node's files are this host's own: then it can be looked at without running a
        command on the node. None (the default): they are not."""
        return None

    def build_root(self) -> Path | None:
        """A folder of this run on the host where the user's programs are built and from
        which the nodes run them; None: this backend does not run user programs (yet)."""
        return None

    def program_dir(self, node: str, name: str) -> PurePosixPath:
        """The folder on ``node`` where the user program ``name`` is built and run (a
        backend that ``builds_on_nodes``)."""
        raise BackendError(f"the {self.name} backend does not build programs on its nodes")

    def upload(self, node: str, sources: Sequence[Path], folder: PurePosixPath) -> None:
        """Copy files and folders of this host into ``folder`` on the node (made), each
        under its own name, readable by every user there."""
        raise BackendError(f"the {self.name} backend does not build programs on its nodes")

    def node_info(self, node: str) -> Mapping[str, str]:
        """Extra facts about a node for run.json and summary.json (the ssh backend: which
        host plays it). None by default."""
        return {}

    def set_netem(self, node: str, network: str, direction: Direction, netem: Netem | None) -> None:
        """Impair ``node``'s interface on ``network`` in ``direction`` with the kernel's netem
        qdisc, replacing any it had; ``None`` removes it. For a lab that is up (scenario steps,
        a live lab's ``lab netem``); teardown removes what is left."""
        raise UsageError(f"the {self.name} backend does not support netem")
