"""The recording backend and the fake backend, without root: a scripted inner backend is
recorded, and the fake must give back exactly what it gave, in order, and refuse the rest."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path, PurePosixPath

import pytest

from lab.errors import BackendError, BackendUnavailable, CommandTimeout
from lab.run.backends import BACKENDS, choose_backend
from lab.run.backends.base import Backend, Completed, Proc
from lab.run.backends.fake import fake_backend
from lab.run.backends.recording import recording_backend
from lab.run.backends.tape import INDEX_FILE, Recording, RunCall
from lab.spec.model import Interface, Network, Node, Topology

RID = "abc123"


class ScriptedProc(Proc):
    def __init__(self, node: str, argv: Sequence[str]) -> None:
        self.node, self.argv = node, tuple(argv)
        self.alive = True

    @property
    def pid(self) -> int:
        return 4242

    def running(self) -> bool:
        return self.alive

    def signal(self, signum: int) -> None:
        self.alive = False

    def wait(self, timeout: float) -> int | None:
        return None if self.alive else -15


class Scripted(Backend):
    """Answers ``echo`` with its arguments, ``poll`` with "no" twice then "yes"; ``slow``
    times out; files on a node are one log."""

    name = "scripted"

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.polls = deque(["no", "no", "yes"])

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
        return "/usr/bin/python3"

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None
    ) -> Completed:
        if argv[0] == "slow":
            raise CommandTimeout(f"slow on {node} did not finish")
        out = self.polls.popleft() if argv[0] == "poll" else " ".join(argv[1:])
        return Completed(tuple(argv), 0, out, "")

    def spawn(self, node: str, argv: Sequence[str], *, log: PurePosixPath) -> Proc:
        return ScriptedProc(node, argv)

    def workdir(self, node: str) -> PurePosixPath:
        return PurePosixPath(f"/tmp/socket-lab/{self.run_id}/{node}")

    def fetch(self, node: str, remote_dir: PurePosixPath, local_dir: Path) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        (local_dir / "service.log").write_text(f"log of {node}\n")

    def interfaces(self, node: str) -> Mapping[str, str]:
        return {"lan": "eth0"}


def topology() -> Topology:
    lan = Network("lan", IPv4Network("10.9.0.0/24"))
    node = Node("a", (Interface("lan", IPv4Address("10.9.0.2")),))
    return Topology(name="t", networks=(lan,), nodes=(node,))


def session_on(backend: Backend, local: Path) -> list[object]:
    """The calls a short run makes, and what each gave."""
    backend.up(topology())
    seen: list[object] = [backend.python, str(backend.workdir("a")), dict(backend.interfaces("a"))]
    seen += [backend.run("a", ["echo", "hi"]).stdout]
    seen += [backend.run("a", ["poll"]).stdout for _ in range(3)]
    with pytest.raises(CommandTimeout, match="slow on a"):
        backend.run("a", ["slow"])
    proc = backend.spawn("a", ["server"], log=PurePosixPath("/x/server.log"))
    seen += [proc.pid, proc.running(), proc.stop(timeout=1.0), proc.running()]
    backend.fetch("a", backend.workdir("a"), local)
    seen += [(local / "service.log").read_text()]
    backend.down()
    return seen


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, list[object]]:
    folder = tmp_path / "recording"
    seen = session_on(recording_backend(Scripted, folder)(RID), tmp_path / "real")
    return folder, seen


def test_the_fake_answers_what_the_recorded_backend_answered(
    recorded: tuple[Path, list[object]], tmp_path: Path
) -> None:
    folder, seen = recorded
    assert seen[3:8] == ["hi", "no", "no", "yes", 4242]
    replayed = session_on(fake_backend(folder)("fff000"), tmp_path / "replayed")
    assert replayed == seen


def test_the_fake_starts_over_for_every_instance(
    recorded: tuple[Path, list[object]], tmp_path: Path
) -> None:
    cls = fake_backend(recorded[0])
    first = cls("fff000").run("a", ["poll"]).stdout
    assert cls("fff001").run("a", ["poll"]).stdout == first == "no"


def test_an_unrecorded_command_is_an_error_naming_node_and_argv(
    recorded: tuple[Path, list[object]],
) -> None:
    fake = fake_backend(recorded[0])("fff000")
    with pytest.raises(BackendError, match=r"has no command `echo bye` on node a"):
        fake.run("a", ["echo", "bye"])
    with pytest.raises(BackendError, match=r"has no command `echo hi` on node b"):
        fake.run("b", ["echo", "hi"])
    with pytest.raises(BackendError, match=r"background start `client` on node a"):
        fake.spawn("a", ["client"], log=PurePosixPath("/x/c.log"))


def test_a_command_asked_more_often_than_recorded_is_an_error(
    recorded: tuple[Path, list[object]],
) -> None:
    fake = fake_backend(recorded[0])("fff000")
    fake.run("a", ["echo", "hi"])
    with pytest.raises(BackendError, match=r"has no more command `echo hi` on node a"):
        fake.run("a", ["echo", "hi"])
    proc = fake.spawn("a", ["server"], log=PurePosixPath("/x/server.log"))
    proc.stop()
    with pytest.raises(BackendError, match=r"no more stop\(\) of `server` on node a"):
        proc.stop()


def test_the_fetched_files_are_kept_apart_from_what_the_run_wrote(tmp_path: Path) -> None:
    folder = tmp_path / "recording"
    backend = recording_backend(Scripted, folder)(RID)
    local = tmp_path / "out" / "a"
    (local / "snapshots").mkdir(parents=True)
    (local / "snapshots" / "before.ps.txt").write_text("written by the run\n")
    backend.fetch("a", backend.workdir("a"), local)
    backend.down()
    assert sorted(p.name for p in (folder / "files" / "a").iterdir()) == ["service.log"]
    assert (local / "service.log").is_file() and (local / "snapshots").is_dir()


def test_the_index_reads_back_as_written(recorded: tuple[Path, list[object]]) -> None:
    folder = recorded[0]
    recording = Recording.load(folder)
    assert recording.backend == "scripted" and recording.nodes["a"].interfaces == {"lan": "eth0"}
    runs = [c for c in recording.calls if isinstance(c, RunCall)]
    assert [c.argv for c in runs][:2] == [("echo", "hi"), ("poll",)]
    assert runs[-1].raised is not None and runs[-1].raised.kind == "CommandTimeout"
    recording.save(folder)
    assert Recording.load(folder) == recording


def test_a_broken_index_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / INDEX_FILE).write_text('{"version": 1, "backend": "x"}')
    with pytest.raises(BackendError, match="not a readable recording"):
        fake_backend(tmp_path)


def test_the_fake_is_not_a_backend_to_choose() -> None:
    assert "fake" not in BACKENDS
    with pytest.raises(BackendUnavailable, match="unknown backend 'fake'"):
        choose_backend("fake")


def test_a_node_that_held_no_files_fetches_an_empty_folder(
    recorded: tuple[Path, list[object]], tmp_path: Path
) -> None:
    """A checkout has no empty folders: a node whose fetch copied nothing has none."""
    folder = recorded[0]
    for file in (folder / "files" / "a").iterdir():
        file.unlink()
    (folder / "files" / "a").rmdir()
    fake = fake_backend(folder)("fff000")
    fake.fetch("a", fake.workdir("a"), tmp_path / "local")
    assert list((tmp_path / "local").iterdir()) == []
