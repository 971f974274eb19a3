"""Building the user's programs (``programs:``) once per run, before anything starts.

The sources are copied into the run's own folder, one build folder per program, and the
build command runs there as an argument list (never a shell). A compile error is a
``TopologyError`` (exit 2) carrying the compiler's own ``file:line`` messages with the
paths as the topology wrote them. The folders, binaries and build logs are copied into the
results folder (``programs/NAME/``) as evidence. How a built program is started (bounded
and unprivileged) is ``command`` here too, so that servers and clients start alike.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lab.errors import TopologyError
from lab.programs.userprog import (
    BUILD_TIMEOUT,
    LOG_CAP,
    MAX_BUILD_LOG,
    STOP_GRACE,
    bounded,
    open_to_all,
    shown_as,
)
from lab.spec.model import Topology, UserProgram

__all__ = [
    "BUILD_TIMEOUT", "LOG_CAP", "MAX_BUILD_LOG", "STOP_GRACE", "Built", "build_all",
    "build_failure", "command", "keep_evidence", "tools_on",
]  # fmt: skip


@dataclass(frozen=True)
class Built:
    """A program built for this run: its folder (where it runs) and its build log. On a
    backend that builds on each node, ``on`` gives each node's own folder."""

    program: UserProgram
    folder: PurePosixPath | Path
    log: Path
    on: Mapping[str, PurePosixPath] = field(default_factory=dict)

    def folder_on(self, node: str) -> PurePosixPath | Path:
        return self.on.get(node, self.folder)


def tools_on(topology: Topology, node: str) -> list[str]:
    """The commands a node needs for the user programs it runs: each build's compiler and
    each run's interpreter (not the program itself, which the build makes or the sources
    bring). For the ssh pre-flight, which names what a host lacks."""
    tools: list[str] = []
    for program in topology.used_programs():
        if node not in topology.nodes_running(program.name):
            continue
        tools += program.build[:1]
        if "/" not in program.run[0]:
            tools.append(program.run[0])
    return list(dict.fromkeys(tools))


def build_all(programs: Sequence[UserProgram], root: Path) -> dict[str, Built]:
    """Build every program under ``root`` (the run's folder); every failure at once."""
    built: dict[str, Built] = {}
    problems: list[str] = []
    for program in programs:
        result = _build(program, root / "programs" / program.name)
        if isinstance(result, Built):
            built[program.name] = result
        else:
            problems.append(result)
    if problems:
        raise TopologyError(problems)
    return built


def _build(program: UserProgram, folder: Path) -> Built | str:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for src in program.sources:
        target = folder / src.name
        if src.is_dir():
            shutil.copytree(src, target, symlinks=False)
        else:
            shutil.copy2(src, target)
    log = folder.parent / f"{program.name}.build.log"
    if not program.build:
        log.write_text("nothing to build\n")
        open_to_all(folder)
        return Built(program, folder, log)
    try:
        done = subprocess.run(
            list(program.build),
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        return f"program {program.name}: build: no command {program.build[0]!r} on this host"
    except subprocess.TimeoutExpired:
        return f"program {program.name}: build did not finish within {BUILD_TIMEOUT:g} s"
    output = done.stdout[:MAX_BUILD_LOG].decode("utf-8", "replace")
    log.write_text(f"$ {' '.join(program.build)}\n{output}exit status {done.returncode}\n")
    if done.returncode != 0:
        return build_failure(program, done.returncode, output)
    open_to_all(folder)
    return Built(program, folder, log)


def build_failure(program: UserProgram, status: int, output: str, where: str = "") -> str:
    shown = as_written(output, program).rstrip()
    return f"program {program.name}: build{where} failed (exit status {status}):\n{shown}"


def as_written(output: str, program: UserProgram) -> str:
    """Compiler output with the build folder's file names put back as the topology wrote
    them (``server.c:5:3:`` -> ``student/server.c:5:3:``)."""
    names = zip((src.name for src in program.sources), program.written, strict=False)
    return shown_as(output, names)


def keep_evidence(built: dict[str, Built], out_dir: Path) -> None:
    """The build folders (sources and binaries) and logs, into ``out_dir/programs``."""
    for name, b in built.items():
        target = out_dir / "programs" / name
        shutil.copytree(b.folder, target, symlinks=True, dirs_exist_ok=True)
        shutil.copy2(b.log, target / "build.log")


def command(python: str, built: Built, node: str, argv: Sequence[str], uid: int) -> list[str]:
    """The argument list that starts a built program on a node: bounded, as ``uid``, in
    its folder."""
    return bounded(python, str(built.folder_on(node)), argv, str(uid))
