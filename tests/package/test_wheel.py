"""The package as a user installs it: a wheel in a fresh virtual environment, run from a
folder that has nothing of the checkout in it. Every file a command reads must be in the
wheel (the image build files, the topologies, the experiments)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import lab as checkout_lab
from tests.conftest import require
from tests.labcli import ROOT

pytestmark = pytest.mark.slow

# Left out of the copy the wheel is built from: build/ in particular, where setuptools
# keeps files from earlier builds that would end up in the wheel.
NOT_SOURCE = ("build", "dist", "*.egg-info", ".git", "results", "__pycache__", ".*_cache")


@dataclass(frozen=True)
class Installed:
    venv: Path
    cwd: Path

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``args[0]`` from the venv's bin/, in the empty folder, without the checkout's
        PYTHONPATH, so that only the installed package can be imported."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        argv = [str(self.venv / "bin" / args[0]), *args[1:]]
        return subprocess.run(
            argv, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=timeout
        )


def _check(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel built from a clean copy of the checkout, installed with ``--no-deps`` into
    a venv that takes the dependencies from the system's site-packages."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _check(subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(source)],
        capture_output=True, text=True, timeout=600,
    ))  # fmt: skip
    (wheel,) = (tmp / "dist").glob("socket_lab-*.whl")
    venv = tmp / "venv"
    _check(subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        capture_output=True, text=True, timeout=300,
    ))  # fmt: skip
    # --ignore-installed: the system's editable install of the project is not this wheel.
    _check(subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
        capture_output=True, text=True, timeout=600,
    ))  # fmt: skip
    cwd = tmp / "empty"
    cwd.mkdir()
    yield Installed(venv, cwd)


def test_the_venv_imports_the_wheel_not_the_checkout(installed: Installed) -> None:
    out = _check(installed.run("python", "-c", "import lab; print(lab.__file__)"))
    where = Path(out.strip()).resolve()
    assert where.is_relative_to(installed.venv.resolve()), where
    assert not where.is_relative_to(ROOT.resolve())


def test_version(installed: Installed) -> None:
    out = _check(installed.run("lab", "--version"))
    assert out.split() == ["socket-lab", checkout_lab.__version__]


def test_every_experiment_is_listed(installed: Installed) -> None:
    out = _check(installed.run("lab", "experiment", "--list"))
    shipped = sorted(p.stem for p in (ROOT / "topologies" / "experiments").glob("*.yaml"))
    # the course's 10, 4 on impaired links, 4 spot-the-bug, 8 on the rest of the notes
    assert len(shipped) == 26
    assert [line.split()[0] for line in out.splitlines()] == shipped


def test_the_c_programs_ship(installed: Installed) -> None:
    """The course's C and C++ sources (and their spot-the-bug variants) are in the wheel."""
    code = (
        "import pathlib, lab.programs as p\n"
        "c = pathlib.Path(p.__file__).parent / 'c'\n"
        "print(*sorted(str(f.relative_to(c)) for f in c.rglob('*') if f.is_file()))"
    )
    shipped = _check(installed.run("python", "-c", code)).split()
    source = ROOT / "lab" / "programs" / "c"
    expected = sorted(
        str(f.relative_to(source))
        for f in source.rglob("*")
        if f.is_file() and f.suffix in {".c", ".h", ".cpp", ".md"}
    )
    assert shipped == expected
    assert "bugs/fork_server.c" in shipped and "dict_server.cpp" in shipped


def test_init_from_the_wheel(installed: Installed) -> None:
    _check(installed.run("lab", "init", "mine"))
    _check(installed.run("lab", "validate", "mine/default.yaml"))
    assert (installed.cwd / "mine" / "experiments" / "handshake.yaml").is_file()


def test_an_experiment_runs(installed: Installed, root: None) -> None:
    proc = installed.run(
        "lab", "experiment", "handshake", "--backend", "netns", "--out", "out", "--quiet"
    )
    _check(proc)
    assert (installed.cwd / "out" / "summary.json").is_file()


@pytest.mark.docker
def test_images_build_finds_its_files(installed: Installed) -> None:
    require(shutil.which("docker") is not None, "needs the docker command")
    engine = subprocess.run(["docker", "info"], capture_output=True, timeout=60)
    require(engine.returncode == 0, "needs a reachable Docker engine")
    proc = installed.run("lab", "images", "build")
    assert "Traceback" not in proc.stderr
    _check(proc)


def test_schema(installed: Installed) -> None:
    out = _check(installed.run("lab", "schema"))
    assert out.strip()
