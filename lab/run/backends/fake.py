"""A backend that runs nothing: it answers every call from a recording of a real run.

``fake_backend(folder)`` gives a backend class for ``run_lab`` that needs no root, no
network and no programs: ``up`` and ``down`` succeed, and each call is answered with what
the recorded run got for the same call (see ``lab.run.backends.tape``). Calls are matched
by node and argument list; a call made several times (the runner's poll loops) gets the
recorded answers in their recorded order, so a loop ends when the real one did. A call the
recording does not hold raises ``BackendError`` naming the node and the command.

Node facts (work directories, interfaces, the Python) are the recorded ones, so the
commands the runner builds from them are the recorded commands. The fake is not one of
``lab.run.backends.BACKENDS``: ``--backend auto`` never picks it.
"""

from __future__ import annotations

import shutil
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from signal import SIGTERM
from typing import TypeVar

from lab.errors import BackendError
from lab.run.backends.base import Backend, Completed, Proc
from lab.run.backends.tape import (
    FetchCall,
    NodeFacts,
    ProcCall,
    ProcMethod,
    Recording,
    RunCall,
    SpawnCall,
)
from lab.spec.model import Topology

Key = tuple[str, tuple[str, ...]]
C = TypeVar("C")


def _show(argv: Sequence[str]) -> str:
    return " ".join(argv)


class _Answers:
    """The recorded calls, queued per key; each instance of the backend replays afresh."""

    def __init__(self, recording: Recording) -> None:
        self.lock = threading.Lock()
        self.runs: dict[Key, deque[RunCall]] = {}
        self.spawns: dict[Key, deque[SpawnCall]] = {}
        self.procs: dict[tuple[int, ProcMethod], deque[ProcCall]] = {}
        self.fetches: dict[Key, deque[FetchCall]] = {}
        for call in recording.calls:
            if isinstance(call, RunCall):
                self.runs.setdefault((call.node, call.argv), deque()).append(call)
            elif isinstance(call, SpawnCall):
                self.spawns.setdefault((call.node, call.argv), deque()).append(call)
            elif isinstance(call, ProcCall):
                self.procs.setdefault((call.proc, call.method), deque()).append(call)
            else:
                self.fetches.setdefault((call.node, (call.remote_dir,)), deque()).append(call)

    def next(self, table: dict[Key, deque[C]], key: Key, what: str) -> C:
        with self.lock:
            queue = table.get(key)
            if queue:
                return queue.popleft()
        node, argv = key
        more = " no more" if queue is not None else " no"
        raise BackendError(f"the recording has{more} {what} `{_show(argv)}` on node {node}")

    def proc_call(self, number: int, method: ProcMethod, proc: FakeProc) -> ProcCall:
        with self.lock:
            queue = self.procs.get((number, method))
            if queue:
                return queue.popleft()
        raise BackendError(
            f"the recording has no more {method}() of `{_show(proc.argv)}` on node {proc.node}"
        )


class FakeProc(Proc):
    """A recorded background process: its PID and each answer its real handle gave."""

    def __init__(self, call: SpawnCall, answers: _Answers) -> None:
        self.node = call.node
        self.argv = call.argv
        self._pid = call.pid
        self._number = call.proc
        self._answers = answers

    @property
    def pid(self) -> int:
        return self._pid

    def _answer(self, method: ProcMethod) -> bool | int | None:
        call = self._answers.proc_call(self._number, method, self)
        if call.raised is not None:
            raise call.raised.exception()
        return call.result

    def running(self) -> bool:
        return bool(self._answer("running"))

    def signal(self, signum: int) -> None:
        self._answer("signal")

    def wait(self, timeout: float) -> int | None:
        return _status(self._answer("wait"))

    def stop(self, timeout: float = 5.0, signum: int = SIGTERM) -> int | None:
        return _status(self._answer("stop"))


def _status(value: bool | int | None) -> int | None:
    return None if value is None else int(value)


class FakeBackend(Backend):
    """Replays ``recording`` (read from ``folder``); made by ``fake_backend``."""

    name = "fake"
    recording: Recording
    folder: Path

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self._answers = _Answers(self.recording)

    @classmethod
    def available(cls) -> str | None:
        return None

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        return []

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        return {}

    def up(self, topology: Topology) -> None:
        pass

    def down(self) -> None:
        pass

    @property
    def python(self) -> str:
        return self.recording.python

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        call = self._answers.next(self._answers.runs, (node, tuple(argv)), "command")
        if call.raised is not None:
            raise call.raised.exception()
        return Completed(call.argv, call.returncode, call.stdout, call.stderr)

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        call = self._answers.next(self._answers.spawns, (node, tuple(argv)), "background start")
        if call.raised is not None:
            raise call.raised.exception()
        return FakeProc(call, self._answers)

    def workdir(self, node: str) -> PurePosixPath:
        return PurePosixPath(self._facts(node).workdir)

    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        key = (node, (str(remote_dir),))
        call = self._answers.next(self._answers.fetches, key, "fetch of")
        if call.raised is not None:
            raise call.raised.exception()
        local_dir.mkdir(parents=True, exist_ok=True)
        source = self.folder / call.folder
        if source.is_dir():  # a node that held no files has no folder (git keeps none)
            shutil.copytree(source, local_dir, dirs_exist_ok=True)

    def interfaces(self, node: str) -> Mapping[str, str]:
        return dict(self._facts(node).interfaces)

    def node_info(self, node: str) -> Mapping[str, str]:
        return dict(self._facts(node).info)

    def _facts(self, node: str) -> NodeFacts:
        facts = self.recording.nodes.get(node)
        if facts is None:
            raise BackendError(f"the recording has no node {node!r}")
        return facts


def fake_backend(folder: Path) -> type[FakeBackend]:
    """A backend class replaying the recording in ``folder``; every instance starts over."""
    recording = Recording.load(folder)

    class Bound(FakeBackend):
        shares_process_table = recording.shares_process_table

    Bound.recording = recording
    Bound.folder = folder
    return Bound
