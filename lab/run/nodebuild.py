"""Building the user's programs on the nodes themselves, for a backend whose nodes are
other machines (ssh): the sources are uploaded to each node that runs a program and built
there with the node's own compiler, after bring-up and before anything starts. A compile
error on any node is a ``TopologyError`` (exit 2) with the compiler's messages; the
build folder of the first node comes back into the results folder as evidence."""

from __future__ import annotations

from pathlib import Path

from lab.errors import BackendError, TopologyError
from lab.i18n import t
from lab.run.session import Progress, Session
from lab.run.userbuild import (
    BUILD_TIMEOUT,
    MAX_BUILD_LOG,
    Built,
    build_failure,
)
from lab.spec.model import UserProgram


def build_on_nodes(session: Session, out_dir: Path, say: Progress) -> dict[str, Built]:
    built: dict[str, Built] = {}
    problems: list[str] = []
    for program in session.topology.used_programs():
        nodes = session.topology.nodes_running(program.name)
        say(t("progress.building_on", program=program.name, nodes=", ".join(nodes)))
        result = _build(session, program, nodes, out_dir)
        if isinstance(result, Built):
            built[program.name] = result
        else:
            problems += result
    if problems:
        raise TopologyError(problems)
    return built


def _build(
    session: Session, program: UserProgram, nodes: list[str], out_dir: Path
) -> Built | list[str]:
    backend = session.backend
    folders = {node: backend.program_dir(node, program.name) for node in nodes}
    problems: list[str] = []
    logs: list[str] = []
    for node, folder in folders.items():
        backend.upload(node, program.sources, folder)
        if not program.build:
            logs.append(f"[{node}] nothing to build\n")
            continue
        wrapper = [backend.python, "-m", "lab.programs.userprog", "--dir", str(folder), "--"]
        try:
            done = session.run(node, [*wrapper, *program.build], timeout=BUILD_TIMEOUT)
        except BackendError as exc:
            problems.append(f"program {program.name}: build on {node}: {exc}")
            continue
        output = (done.stdout + done.stderr)[:MAX_BUILD_LOG]
        logs.append(
            f"[{node}] $ {' '.join(program.build)}\n{output}exit status {done.returncode}\n"
        )
        if done.returncode != 0:
            problems.append(build_failure(program, done.returncode, output, f" on {node}"))
    target = out_dir / "programs" / program.name
    target.mkdir(parents=True, exist_ok=True)
    log = target / "build.log"
    log.write_text("".join(logs))
    if problems:
        return problems
    first = nodes[0]
    backend.fetch(first, folders[first], target)
    return Built(program, folders[first], log, on=folders)
