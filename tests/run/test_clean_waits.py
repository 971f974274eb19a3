"""`lab clean` returns only once the processes of the runs it removed have exited (a
process may take a while to act on SIGTERM), within a bound, and names any that did not.

A backend that stops a run's process the way a real one does (a signal, no wait) stands
in for the real ones, so that the wait itself is what is tested."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import pytest

import lab.run.backends as backends_pkg
from lab.cli import main
from lab.run.backends.base import new_run_id
from lab.run.backends.fake import FakeBackend

RID = new_run_id()
# A process that takes 1.4 s to act on SIGTERM, or (``IGNORE``) never does.
LINGER = (
    "import signal, sys, time\n"
    "def stop(*_):\n    time.sleep(1.4)\n    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN if sys.argv[1] == 'ignore' else stop)\n"
    "print('ready', flush=True)\ntime.sleep(120)\n"
)


class SlowToExit(FakeBackend):
    """Holds one run, RID, whose processes it signals and does not wait for."""

    name = "slow"
    procs: ClassVar[list[subprocess.Popen[str]]] = []

    @classmethod
    def leftover_runs(cls) -> set[str]:
        return {RID} if any(p.poll() is None for p in cls.procs) else set()

    @classmethod
    def running_labs(cls) -> Mapping[str, str]:
        return {rid: "slow lab" for rid in cls.leftover_runs()}

    @classmethod
    def run_processes(cls, run_id: str) -> dict[int, str]:
        return {p.pid: "python3 linger" for p in cls.procs if p.poll() is None}

    @classmethod
    def clean(cls, run_id: str | None = None) -> list[str]:
        live = [p for p in cls.procs if p.poll() is None]
        for p in live:
            p.terminate()
        return [f"process {p.pid}" for p in live]


@pytest.fixture
def lingering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[subprocess.Popen[str]]]:
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))
    monkeypatch.setattr(backends_pkg, "BACKENDS", {"slow": (__name__, "SlowToExit")})
    procs: list[subprocess.Popen[str]] = []
    monkeypatch.setattr(SlowToExit, "procs", procs)
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def start(procs: list[subprocess.Popen[str]], mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", LINGER, mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    procs.append(proc)
    return proc


def test_clean_returns_once_the_processes_have_exited(
    lingering: list[subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    proc = start(lingering, "linger")
    code = main(["clean", "--run-id", RID])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"process {proc.pid}" in out
    assert proc.poll() is not None, "`lab clean` returned while the run's process still ran"


def test_clean_names_a_process_that_does_not_exit(
    lingering: list[subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    proc = start(lingering, "ignore")
    code = main(["clean", "--run-id", RID])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert f"process {proc.pid} (python3 linger) still running" in err
    assert proc.poll() is None
