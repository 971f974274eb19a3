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

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from signal import SIGKILL, SIGTERM

from lab.errors import BackendError
from lab.spec.model import Node, Topology

RUN_ID_RE = re.compile(r"^[0-9a-f]{6}$")


def new_run_id() -> str:
    """Six hex digits: short enough to fit in Linux's 15-character interface names."""
    return secrets.token_hex(3)


def node_of(topology: Topology | None, node: str) -> Node:
    """The node named ``node`` of a backend's topology, as a ``BackendError`` when the lab is
    not up or has no such node."""
    if topology is None:
        raise BackendError("the lab is not up")
    try:
        return topology.node(node)
    except KeyError:
        raise BackendError(f"no node {node!r} in this lab") from None


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

    def __init__(self, run_id: str) -> None:
        if not RUN_ID_RE.match(run_id):
            raise ValueError(f"run id must be six hex digits, got {run_id!r}")
        self.run_id = run_id

    # -- lifecycle ---------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def available(cls) -> str | None:
        """None if this backend can be used here, else a one-line reason with what to do."""

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
