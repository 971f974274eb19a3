"""A backend that runs everything on another backend and records each call and its result.

``recording_backend(NetnsBackend, folder)`` is a backend class like any other: give it to
``run_lab`` and the run happens as usual, while every call the run makes is written to a
recording (see ``lab.run.backends.tape``) that ``lab.run.backends.fake`` can replay
without root, network or the programs. The index is written when the lab is torn down.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from signal import SIGTERM
from typing import TypeVar

from lab.errors import BackendError
from lab.run.backends.base import Backend, Completed, Proc
from lab.run.backends.tape import (
    FILES_DIR,
    TOPOLOGY_FILE,
    Call,
    FetchCall,
    NodeFacts,
    ProcCall,
    ProcMethod,
    Raised,
    Recording,
    RunCall,
    SpawnCall,
)
from lab.spec.model import Topology

T = TypeVar("T")


class _Recorder:
    """The recording under way, shared by a backend and its handles; calls may come from
    several threads at once (snapshots and clients run in parallel)."""

    def __init__(self, folder: Path, backend: str) -> None:
        self.folder = folder
        self.recording = Recording(backend=backend)
        self.lock = threading.Lock()
        self.procs = 0

    def add(self, call: Call) -> None:
        with self.lock:
            self.recording.calls.append(call)

    def new_proc(self) -> int:
        with self.lock:
            self.procs += 1
            return self.procs

    def facts(self, node: str) -> NodeFacts:
        with self.lock:
            return self.recording.nodes.setdefault(node, NodeFacts())

    def save(self) -> None:
        with self.lock:
            self.recording.save(self.folder)


class RecordingProc(Proc):
    """A handle of the inner backend whose every call is recorded."""

    def __init__(self, inner: Proc, number: int, recorder: _Recorder) -> None:
        self.node = inner.node
        self.argv = inner.argv
        self._inner = inner
        self._number = number
        self._recorder = recorder

    @property
    def pid(self) -> int:
        return self._inner.pid

    def _call(self, method: ProcMethod, action: Callable[[], T]) -> T:
        try:
            result = action()
        except BackendError as exc:
            self._recorder.add(ProcCall(self._number, method, raised=Raised.of(exc)))
            raise
        value = result if isinstance(result, bool | int) else None
        self._recorder.add(ProcCall(self._number, method, value))
        return result

    def running(self) -> bool:
        return self._call("running", self._inner.running)

    def signal(self, signum: int) -> None:
        self._call("signal", lambda: self._inner.signal(signum))

    def wait(self, timeout: float) -> int | None:
        return self._call("wait", lambda: self._inner.wait(timeout))

    def stop(self, timeout: float = 5.0, signum: int = SIGTERM) -> int | None:
        # The inner handle's own running/wait/signal calls are not recorded: a replayed
        # stop answers with what this stop returned, as a whole.
        return self._call("stop", lambda: self._inner.stop(timeout, signum))


class RecordingBackend(Backend):
    """Delegates to ``inner_cls``; bound to a folder by ``recording_backend``."""

    name = "recording"
    inner_cls: type[Backend]
    folder: Path

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.inner = self.inner_cls(run_id)
        self._recorder = _Recorder(self.folder, self.inner.name)
        self._recorder.recording.python = self.inner.python
        self.shares_process_table = self.inner.shares_process_table
        self._recorder.recording.shares_process_table = self.shares_process_table

    @classmethod
    def available(cls) -> str | None:
        return cls.inner_cls.available()

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        return cls.inner_cls.clean(run_id)

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        return cls.inner_cls.running_labs()

    def up(self, topology: Topology) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if topology.source is not None:
            shutil.copyfile(topology.source, self.folder / TOPOLOGY_FILE)
        self.inner.up(topology)

    def down(self) -> None:
        try:
            self.inner.down()
        finally:
            self._recorder.save()

    @property
    def python(self) -> str:
        return self.inner.python

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        try:
            done = self.inner.run(node, argv, timeout=timeout, input=input)
        except BackendError as exc:
            self._recorder.add(RunCall(node, tuple(argv), raised=Raised.of(exc)))
            raise
        self._recorder.add(RunCall(node, tuple(argv), done.returncode, done.stdout, done.stderr))
        return done

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        number = self._recorder.new_proc()
        try:
            proc = self.inner.spawn(node, argv, log=log)
        except BackendError as exc:
            call = SpawnCall(node, tuple(argv), str(log), number, raised=Raised.of(exc))
            self._recorder.add(call)
            raise
        self._recorder.add(SpawnCall(node, tuple(argv), str(log), number, proc.pid))
        return RecordingProc(proc, number, self._recorder)

    def workdir(self, node: str) -> PurePosixPath:
        path = self.inner.workdir(node)
        self._recorder.facts(node).workdir = str(path)
        return path

    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        """Fetch into a folder of its own first: ``local_dir`` may already hold files the
        run wrote itself (snapshots), and only what the node held belongs in the recording."""
        folder = self._files_folder(node)
        with tempfile.TemporaryDirectory(prefix="socket-lab-fetch-") as tmp:
            staged = Path(tmp) / node
            try:
                self.inner.fetch(node, remote_dir, staged)
            except BackendError as exc:
                self._recorder.add(FetchCall(node, str(remote_dir), folder, Raised.of(exc)))
                raise
            staged.mkdir(parents=True, exist_ok=True)
            shutil.copytree(staged, self.folder / folder, dirs_exist_ok=True)
            shutil.copytree(staged, local_dir, dirs_exist_ok=True)
        self._recorder.add(FetchCall(node, str(remote_dir), folder))

    def _files_folder(self, node: str) -> str:
        """``files/<node>``, or ``files/<node>.<n>`` for the node's n-th fetch after the first."""
        done = sum(
            1 for c in self._recorder.recording.calls if isinstance(c, FetchCall) and c.node == node
        )
        return f"{FILES_DIR}/{node}" + (f".{done + 1}" if done else "")

    def interfaces(self, node: str) -> Mapping[str, str]:
        found = self.inner.interfaces(node)
        self._recorder.facts(node).interfaces = dict(found)
        return found

    def node_info(self, node: str) -> Mapping[str, str]:
        info = self.inner.node_info(node)
        self._recorder.facts(node).info = dict(info)
        return info


def recording_backend(inner_cls: type[Backend], folder: Path) -> type[RecordingBackend]:
    """A backend class that runs on ``inner_cls`` and records into ``folder``."""

    class Bound(RecordingBackend):
        pass

    Bound.inner_cls = inner_cls
    Bound.folder = folder
    Bound.name = inner_cls.name
    return Bound
