"""The compose node's steps for the user's programs and the services' restarts (see
``lab.programs.compose_node``, whose node class takes them in; ``lab.deploy.compose_user``
writes their options).

Builds come first, before the node's captures and snapshots: each ``--build`` program is
copied into its build folder and built there, with the bounds of ``lab run`` (300 s, 1 MiB
of compiler output kept); then every node waits until each of ``--builders`` has built. A
compile error on any node stops every node before anything starts, as ``lab run`` stops
before any node exists: the compiler's messages (with the paths as the topology wrote
them) are on the building node's output and in its ``build-NAME.log``.

A ``--restart`` is done once every client has finished, as ``lab run`` does it: the
service is stopped, its node snapshotted (``restart-SCENARIO-N``: the TIME_WAIT the new
bind meets), and the service started again with or without SO_REUSEADDR until it listens
or exits; a restart that listens is the service from then on.

Standard library only: this runs inside the node image.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab.programs.supervise import SuperviseError, say
from lab.programs.supervise_children import Child, LogFile
from lab.programs.userprog import (
    BUILD_TIMEOUT,
    LOG_CAP,
    MAX_BUILD_LOG,
    STOP_GRACE,
    open_to_all,
    shown_as,
)

STOP_TIMEOUT = 10.0  # seconds a lab program has to stop on SIGTERM
RESTART_TIMEOUT = 20.0  # seconds a restarted service has to listen or exit
STEP_MARGIN = 60.0  # seconds beyond the builds' own bounds that a node waits for them


@dataclass(frozen=True)
class ProgramBuild:
    """One user program to build on this node (``--build``, JSON)."""

    name: str
    sources: tuple[str, ...]  # paths in this container
    written: tuple[str, ...]  # as the topology wrote them
    build: tuple[str, ...]
    folder: str
    keep: bool  # this node keeps the build folder as the run's evidence

    @classmethod
    def parse(cls, text: str) -> ProgramBuild:
        d = json.loads(text)
        return cls(
            str(d["name"]), tuple(d["sources"]), tuple(d["written"]), tuple(d["build"]),
            str(d["folder"]), bool(d["keep"]),
        )  # fmt: skip


@dataclass(frozen=True)
class RestartSpec:
    """One restart of a service on this node (``--restart``, JSON)."""

    scenario: str
    index: int
    service: str
    reuseaddr: bool
    expect: str | None
    protocol: str
    port: int
    argv: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> RestartSpec:
        d = json.loads(text)
        return cls(
            str(d["scenario"]), int(d["index"]), str(d["service"]), bool(d["reuseaddr"]),
            d["expect"], str(d["protocol"]), int(d["port"]), tuple(d["argv"]),
        )  # fmt: skip

    @property
    def log_name(self) -> str:
        return f"service-{self.service}-{self.scenario}-{self.index}"


def json_option(parse: Callable[[str], object]) -> Callable[[str], object]:
    def read(text: str) -> object:
        try:
            return parse(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise argparse.ArgumentTypeError(f"bad JSON option {text[:80]!r}: {exc}") from exc

    return read


def add_step_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--build",
        type=json_option(ProgramBuild.parse),
        action="append",
        default=[],
        help="JSON: a user program this node builds",
    )
    parser.add_argument("--builders", default="", help="the nodes that build, comma-separated")
    parser.add_argument("--most-builds", type=int, default=1, help="most programs a node builds")
    parser.add_argument(
        "--user-service",
        action="append",
        default=[],
        help="a service that is a user's program (capped log, grace to stop)",
    )
    parser.add_argument("--restart", type=json_option(RestartSpec.parse), action="append",
                        default=[], help="JSON: a restart of a service of this node")  # fmt: skip


def build_program(spec: ProgramBuild) -> tuple[int, str]:
    """Copy the sources into the build folder and build there: (exit status, output)."""
    folder = Path(spec.folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for src in map(Path, spec.sources):
        try:
            if src.is_dir():
                shutil.copytree(src, folder / src.name, symlinks=False)
            else:
                shutil.copy2(src, folder / src.name)
        except OSError as exc:
            return 1, f"cannot copy the source {src}: {exc}\n"
    if not spec.build:
        open_to_all(folder)
        return 0, ""
    try:
        done = subprocess.run(
            list(spec.build), cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        return 127, f"no command {spec.build[0]!r} in the node image\n"
    except subprocess.TimeoutExpired:
        return 124, f"the build did not finish within {BUILD_TIMEOUT:g} s\n"
    output = done.stdout[:MAX_BUILD_LOG].decode("utf-8", "replace")
    names = zip((Path(s).name for s in spec.sources), spec.written, strict=False)
    open_to_all(folder)
    return done.returncode, shown_as(output, names)


def listen_socket(protocol: str, port: int) -> str:
    """The listening socket on ``port`` as ``ss`` shows it, "" if none."""
    flag = "-Hlnt" if protocol == "tcp" else "-Hlnu"
    argv = ["ss", flag, "sport", "=", f":{port}"]
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()


class NodeSteps:
    """Builds, restarts and the user services' bounds; ``PhasedNode`` supplies the rest."""

    args: argparse.Namespace
    node: str
    out_dir: Path | None
    facts: dict[str, object]
    services: dict[str, dict[str, object]]
    servers: dict[str, Child]
    mark: Callable[[str], None]
    wait_all: Callable[..., None]
    snapshot: Callable[[str], None]
    note: Callable[[str, str], None]
    start: Callable[..., Child]
    wait_for: Callable[..., None]
    user_logs: dict[str, LogFile]

    # -- user programs --------------------------------------------------------------------
    def capped(self) -> set[str]:
        """The logs of the user's programs: their services and their restarts."""
        users = set(self.args.user_service)
        restarts = {r.log_name for r in self.args.restart if r.service in users}
        return {f"service-{name}" for name in users} | restarts

    def log_file(self, name: str) -> LogFile | None:
        if self.out_dir is None:
            return None
        if name not in self.capped():
            return LogFile(self.out_dir / f"{name}.log")
        log = LogFile(self.out_dir / f"{name}.log", LOG_CAP)
        self.user_logs[name] = log
        return log

    def build_programs(self) -> None:
        """This node's programs, then every builder's: one failure stops every node."""
        everyone = [n for n in self.args.builders.split(",") if n]
        if not everyone:
            return
        failures = [f for f in map(self.build_one, self.args.build) if f]
        if failures:
            raise SuperviseError("; ".join(failures))
        if self.args.build:
            self.mark("built")
        # Builds run one after another on a node, each bounded: the wait is the longest.
        self.wait_all("built", everyone, BUILD_TIMEOUT * self.most_builds() + STEP_MARGIN)
        sync: Path = self.args.sync
        # A builder that failed (a build, or the node itself) or never said it had built.
        failed = [n for n in everyone if not (sync / f"built.{n}").exists()]
        if failed:
            raise SuperviseError(
                f"the user's programs did not build on {', '.join(failed)}: nothing was run"
            )

    def most_builds(self) -> int:
        """The most programs one builder builds (``--most-builds``, written by lab compose)."""
        return max(1, int(self.args.most_builds))

    def build_one(self, spec: ProgramBuild) -> str | None:
        """Build one program; what went wrong, or None."""
        assert self.out_dir is not None
        say(f"building {spec.name}")
        status, output = build_program(spec)
        command = f"$ {' '.join(spec.build)}\n" if spec.build else "nothing to build\n"
        log = f"{command}{output}exit status {status}\n"
        (self.out_dir / f"build-{spec.name}.log").write_text(log)
        for line in output.splitlines()[:200]:
            os.write(2, f"build {spec.name}| {line}\n".encode("utf-8", "replace"))
        if spec.keep:
            target = self.out_dir.parent / "programs" / spec.name
            shutil.copytree(spec.folder, target, symlinks=True, dirs_exist_ok=True)
            (target / "build.log").write_text(log)
        builds = self.facts.setdefault("builds", {})
        assert isinstance(builds, dict)
        builds[spec.name] = {"exit_status": status, "log": f"build-{spec.name}.log"}
        if status == 0:
            return None
        return f"program {spec.name}: build failed (exit status {status}), see above"

    def stopped(self, name: str, child: Child) -> dict[str, object]:
        """How a service that was sent SIGTERM ended; a user's program that ignores it
        is killed after the grace period, and its log said to be cut if it was."""
        if name not in self.args.user_service:
            return {"exit_status": child.wait(STOP_TIMEOUT)}
        status = child.wait(STOP_GRACE)
        facts: dict[str, object] = {"killed_after_grace": status is None}
        if status is None:
            say(f"warning: service {name} did not stop within {STOP_GRACE:g} s of SIGTERM")
            child.signal(signal.SIGKILL)
            status = child.wait(STOP_GRACE)
        facts["exit_status"] = status
        logs = [self.user_logs.get(f"service-{name}")]
        logs += [self.user_logs.get(r.log_name) for r in self.args.restart if r.service == name]
        if any(log is not None and log.truncated for log in logs):
            facts["log_truncated"] = True
        return facts

    # -- restarts ---------------------------------------------------------------------------
    def run_restarts(self) -> None:
        done: dict[str, list[dict[str, object]]] = {}
        for spec in self.args.restart:
            done.setdefault(spec.scenario, []).append(self.restart(spec))
        if done:
            self.facts["restarts"] = done

    def restart(self, spec: RestartSpec) -> dict[str, object]:
        """Stop the service, snapshot the node, start it again: it listens or exits."""
        old = self.servers.pop(spec.service, None)
        stopped = None
        if old is not None:
            old.signal(signal.SIGTERM)
            stopped = old.wait(STOP_TIMEOUT)
            if stopped is None:
                old.signal(signal.SIGKILL)
                old.wait(STOP_TIMEOUT)
        phase = f"restart-{spec.scenario}-{spec.index}"
        self.snapshot(phase)
        child = self.start(spec.log_name, spec.argv)
        try:
            self.wait_for(
                lambda: child.status() is not None or bool(listen_socket(spec.protocol, spec.port)),
                RESTART_TIMEOUT,
                f"service {spec.service} to listen or exit",
            )
        except SuperviseError as exc:
            self.note(phase, str(exc))
        listen = listen_socket(spec.protocol, spec.port) if child.status() is None else ""
        if listen:
            self.servers[spec.service] = child  # stopped with the others at the end
            again = self.services[spec.service].setdefault("restarted_as", [])
            assert isinstance(again, list)
            again.append(child.proc.pid)
        say(f"restart of {spec.service}: {'listening' if listen else 'exited'}")
        return {
            "service": spec.service, "reuseaddr": spec.reuseaddr, "expect": spec.expect,
            "stopped_status": stopped, "snapshot": phase, "pid": child.proc.pid,
            "log": f"{self.node}/{spec.log_name}.log", "listening": bool(listen),
            "listen_socket": listen, "exit_status": None if listen else child.wait(STOP_TIMEOUT),
        }  # fmt: skip
