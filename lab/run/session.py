"""A running lab: its run id, backend, artifact folder, background processes and teardown.

The guarantee lives here: whatever happens inside ``with Session(...)`` — success, an
exception, Ctrl-C or SIGTERM — every process the run started is stopped, the nodes' files
are fetched into the artifact folder, and the backend tears down every object of the run.
A signal that arrives during teardown does not cut it short: it is remembered and raised
once teardown and the ``on_end`` hook (which writes the run's record) are done.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from types import FrameType, TracebackType
from typing import Any

from lab.errors import BackendError, Interrupted
from lab.i18n import t
from lab.run.backends.base import (
    RUN_ID_RE,
    Backend,
    Completed,
    Owner,
    Proc,
    new_run_id,
    process_start,
)
from lab.run.record import write_atomically
from lab.run.runuid import claim_uid, lock_folder
from lab.spec.model import Topology

Progress = Callable[[str], None]
FETCH_PARALLEL = 8  # nodes whose files are copied at once
# Called once the run is torn down, with what ended it (None: it completed), while signals
# are still held back: whatever it writes is written whole.
EndHook = Callable[[BaseException | None], None]


def registry_dir() -> Path:
    """Where running labs are recorded, one JSON file per run (for ``lab ls``)."""
    return Path(os.environ.get("SOCKET_LAB_STATE", "/run/socket-lab"))


@dataclass(frozen=True)
class RegisteredRun:
    """A run's entry in the registry: who owns it (``pid``, and the owner's start time in
    clock ticks since boot, so that a PID reused by another process does not count) and
    where its results go. ``alive`` is worked out when the entry is read."""

    run_id: str
    topology: str
    backend: str
    pid: int
    out: str
    started: str
    pid_start: int | None = None
    alive: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("alive")
        return data

    @classmethod
    def from_json(cls, data: Any) -> RegisteredRun | None:
        """The entry, or None for a file that is not one (half-written, another tool's)."""
        if not isinstance(data, dict) or not RUN_ID_RE.match(str(data.get("run_id", ""))):
            return None
        try:
            pid = int(data.get("pid", 0))
            start = data.get("pid_start")
            pid_start = int(start) if start is not None else None
        except (TypeError, ValueError):
            return None
        return cls(
            run_id=str(data["run_id"]),
            topology=str(data.get("topology", "?")),
            backend=str(data.get("backend", "?")),
            pid=pid,
            out=str(data.get("out", "")),
            started=str(data.get("started", "")),
            pid_start=pid_start,
            alive=Owner(pid, pid_start).alive(),
        )


def registered_runs() -> list[RegisteredRun]:
    """Every run recorded in the registry, with ``alive`` telling whether its owner runs."""
    runs = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            run = RegisteredRun.from_json(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
        if run is not None:
            runs.append(run)
    return runs


def forget_run(run_id: str) -> bool:
    """Drop one run's registry entry; whether there was one."""
    try:
        (registry_dir() / f"{run_id}.json").unlink()
    except OSError:
        return False
    return True


def forget_dead_runs(run_id: str | None = None) -> list[str]:
    """Drop registry entries whose owner is gone (of one run, or all); returns their ids."""
    return [
        run.run_id
        for run in registered_runs()
        if not run.alive and run_id in (None, run.run_id) and forget_run(run.run_id)
    ]


@dataclass
class Timings:
    """Wall-clock seconds per phase of a run."""

    values: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.values[phase] = round(self.values.get(phase, 0.0) + time.monotonic() - start, 3)


class Session:
    """Owns one run. Use as a context manager; see the module docstring for the guarantee."""

    def __init__(
        self,
        topology: Topology,
        backend_cls: type[Backend],
        out_dir: Path,
        *,
        progress: Progress | None = None,
        run_id: str | None = None,
    ) -> None:
        self.topology = topology
        self.run_id = run_id or new_run_id()
        self.backend = backend_cls(self.run_id)
        self.out_dir = out_dir
        self.progress: Progress = progress or (lambda _msg: None)
        self.timings = Timings()
        self.procs: list[Proc] = []
        self.is_up = False
        self.up_done = False  # up() returned: the nodes' work directories exist
        self.fetched = False
        self.teardown_errors: list[str] = []
        self.fetch_errors: dict[str, str] = {}  # node -> why its files could not be copied
        self.on_end: EndHook | None = None
        self.on_idle: Callable[[], None] | None = None  # called once, by idle()
        self.pending_signal: int | None = None  # a signal that arrived during teardown
        self._old_handlers: dict[int, Any] = {}
        self._uid: tuple[int, int] | None = None  # the user programs' uid and its lock

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Session:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._install_signal_handlers()
        self._register()
        self.progress(t("progress.results", run_id=self.run_id, out_dir=self.out_dir))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A second Ctrl-C must not cut teardown short: remember signals until it is done.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._remember_signal)
        outcome = exc
        try:
            try:
                self.teardown(raise_errors=exc is None)
            except Exception as err:
                outcome = err
            outcome = self._end(outcome)
        finally:
            self._unregister()
            self._restore_signal_handlers()
            if self._uid is not None:  # the programs have stopped: another run may have it
                os.close(self._uid[1])
                self._uid = None
        if outcome is not None and outcome is not exc:
            raise outcome

    def _end(self, outcome: BaseException | None) -> BaseException | None:
        """Run the end hook with what ended the run; a signal remembered meanwhile ends a
        run that had otherwise completed, and the hook then runs again to record it."""
        while True:
            if self.pending_signal is not None and not isinstance(outcome, Interrupted):
                # Also over an error: the signal's exception, raised inside a library's
                # lock handling (a thread pool's), can surface as that library's error.
                cause, outcome = outcome, Interrupted(self.pending_signal)
                outcome.__context__ = cause
            if self.on_end is not None:
                self.on_end(outcome)
            if outcome is not None or self.pending_signal is None:
                return outcome

    def _remember_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.pending_signal is None:
            self.pending_signal = signum

    def _raise_interrupted(self, signum: int, _frame: FrameType | None) -> None:
        # Remembered as well as raised: Python drops an exception raised where it cannot
        # propagate (a weakref callback or __del__ that the signal happened to land in), and
        # the run must still end as interrupted (see check_signal).
        self._remember_signal(signum, _frame)
        raise Interrupted(signum)

    def idle(self) -> None:
        """The run only waits for a while (on its clients): ``on_idle`` runs, once."""
        hook, self.on_idle = self.on_idle, None
        if hook is not None:
            hook()

    def check_signal(self) -> None:
        """Raise the signal that arrived while the run went on (its exception was lost)."""
        if self.pending_signal is not None:
            raise Interrupted(self.pending_signal)

    def bring_up(self) -> None:
        self.progress(t("progress.up", count=len(self.topology.nodes), backend=self.backend.name))
        note = self.backend.impairment_note(self.topology)
        if note:
            self.progress(note)
        with self.timings.measure("up"):
            self.is_up = True  # set first: a half-done up() must still be torn down
            self.backend.up(self.topology)
            self.up_done = True

    def teardown(self, *, raise_errors: bool = True) -> None:
        """Stop processes, fetch what the nodes hold, tear the backend down. A failing step
        does not stop the next; failures are kept in ``teardown_errors`` and the first is
        raised only when ``raise_errors`` (not while another exception is on its way)."""
        errors: list[BaseException] = []
        if self.is_up:
            for step in (self.stop_all, self.fetch_all):
                try:
                    step()
                except Exception as exc:  # keep going: teardown must reach down()
                    errors.append(exc)
        with self.timings.measure("down"):
            with contextlib.suppress(Exception):  # a progress line must not stop teardown
                self.progress(t("progress.down"))
            try:
                self.backend.down()
            except Exception as exc:
                errors.append(exc)
        self.is_up = False
        self.teardown_errors = [f"{type(e).__name__}: {e}" for e in errors]
        if errors and raise_errors:
            raise errors[0]

    # -- processes ---------------------------------------------------------------------
    def user_uid(self) -> int:
        """The uid the user's programs of this run run as, claimed at the first call and
        held until the run ends (``lab.run.runuid``)."""
        if self._uid is None:
            self._uid = claim_uid(self.run_id, lock_folder())
        return self._uid[0]

    def run(self, node: str, argv: Sequence[str], *, timeout: float = 30.0) -> Completed:
        return self.backend.run(node, argv, timeout=timeout)

    def spawn(self, node: str, argv: Sequence[str], log_name: str) -> Proc:
        proc = self.backend.spawn(node, argv, log=self.workdir(node) / log_name)
        self.procs.append(proc)
        return proc

    def program(self, name: str, args: Sequence[str]) -> list[str]:
        """The argument list that runs ``lab.programs.<name>`` on a node.

        ``-S``: the programs import only the standard library (tests/shape checks), so the
        site module's start-up work (path hooks, .pth files) is skipped; it was half of
        every client's and server's start-up time."""
        return [self.backend.python, "-S", "-m", f"lab.programs.{name}", *args]

    def workdir(self, node: str) -> PurePosixPath:
        return self.backend.workdir(node)

    def stop_all(self) -> None:
        """Stop every background process, newest first (clients, servers, then captures)."""
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop(timeout=5.0)

    def fetch_all(self) -> None:
        """Copy every node's files; a node that cannot be read (its namespace or container
        gone) is noted in ``fetch_errors`` and the other nodes are still collected."""
        if self.fetched or not self.up_done:  # nothing ran before up() finished
            return

        def fetch(node: str) -> None:
            try:
                self.backend.fetch(node, self.workdir(node), self.node_dir(node))
            except (BackendError, OSError) as exc:  # a lost host, a file unreadable
                self.fetch_errors[node] = str(exc)
                self.progress(t("progress.collect_warning", node=node, error=exc))

        with self.timings.measure("collect"):
            self.progress(t("progress.collect"))
            # Several nodes at once: on Docker and SSH each copy is mostly waiting.
            with ThreadPoolExecutor(FETCH_PARALLEL) as pool:
                list(pool.map(fetch, [node.name for node in self.topology.nodes]))
            self.fetch_errors = dict(sorted(self.fetch_errors.items()))
        self.fetched = True

    def node_dir(self, node: str) -> Path:
        return self.out_dir / node

    # -- ownership: registry and signals ------------------------------------------------
    def _register(self) -> None:
        entry = RegisteredRun(
            run_id=self.run_id,
            topology=self.topology.name,
            backend=self.backend.name,
            pid=os.getpid(),
            out=str(self.out_dir.resolve()),  # `lab clean` may run from another folder
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            pid_start=process_start(os.getpid()),
        )
        with contextlib.suppress(OSError):
            registry_dir().mkdir(parents=True, exist_ok=True)
            # Whole or not at all: a `lab clean` reading it meanwhile must see the owner.
            write_atomically(registry_dir() / f"{self.run_id}.json", json.dumps(entry.to_json()))

    def _unregister(self) -> None:
        with contextlib.suppress(OSError):
            (registry_dir() / f"{self.run_id}.json").unlink()

    def _install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[signum] = signal.signal(signum, self._raise_interrupted)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
