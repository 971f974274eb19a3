"""The live lab's supervisor: the process ``lab up`` forks to own the run until
``lab down`` (see ``lab.run.live`` for why a supervisor)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from lab.cli.progress import progress_printer
from lab.errors import Interrupted, LabError, read_back
from lab.i18n import t

if TYPE_CHECKING:
    from lab.run.backends.base import Backend
    from lab.spec.model import Topology


def supervise(
    topology: Topology, backend_cls: type[Backend], out_dir: Path, name: str, pipe: int, quiet: bool
) -> NoReturn:
    """The supervisor's life (a forked child that never returns): see ``_run_live``."""
    code = 1
    try:
        os.setsid()  # no terminal's Ctrl-C or hang-up reaches the lab
        code = _run_live(topology, backend_cls, out_dir, name, pipe, quiet)
    except BaseException as exc:  # anything at all: the child must not return into the CLI
        with contextlib.suppress(Exception):
            print(f"lab: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _run_live(
    topology: Topology, backend_cls: type[Backend], out_dir: Path, name: str, pipe: int, quiet: bool
) -> int:
    """The run with a live flow; summary.json and report.html are written as it ends, then
    ``lab down`` gets its answer. Until the lab is up, progress and errors go to the
    terminal of ``lab up`` and a failure closes the pipe without "R"; from then on they go
    to ``live.log`` in the results folder."""
    from lab.report.record import Summary
    from lab.report.summary import finish_run, format_summary
    from lab.run.backends.base import process_start
    from lab.run.live import LiveFlow, state_of
    from lab.run.livestate import Reply, forget_live, live_dir, send_reply
    from lab.run.record import RunRecord
    from lab.run.runner import run_lab
    from lab.run.session import Progress, Session
    from lab.run.userbuild import Built

    flows: list[LiveFlow] = []

    def ready(flow: LiveFlow) -> None:
        sock_path = live_dir() / f"{flow.s.run_id}.sock"
        state = state_of(flow, name, sock_path, os.getpid(), process_start(os.getpid()))
        state.save()
        log = os.open(out_dir / "live.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, source in ((0, null), (1, log), (2, log)):
            os.dup2(source, fd)
        os.close(log)
        os.close(null)
        os.write(pipe, b"R" + json.dumps(asdict(state)).encode())
        os.close(pipe)

    def make_flow(
        session: Session, record: RunRecord, say: Progress, built: dict[str, Built]
    ) -> LiveFlow:
        flow = LiveFlow(session, record, say, built)
        sock_path = live_dir() / f"{session.run_id}.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        listener.bind(str(sock_path))
        os.chmod(sock_path, 0o600)  # only root (the lab's owner) may drive it
        listener.listen(8)
        flow.listener = listener
        flow.ready = ready
        flows.append(flow)
        return flow

    say = progress_printer() if not quiet else (lambda _m: None)
    written: list[Summary] = []
    failure: LabError | Interrupted | None = None
    try:
        run_lab(
            topology,
            backend_cls,
            out_dir,
            progress=say,
            finish=lambda: written.append(finish_run(out_dir, topology)),
            flow=make_flow,
        )
    except (LabError, Interrupted) as exc:
        failure = exc
    if not flows:
        if failure is not None:
            print(f"lab: {_said(failure)}", file=sys.stderr)
        return failure.exit_code if failure is not None else 1
    flow = flows[0]
    forget_live(flow.s.run_id)
    if flow.listener is not None:
        flow.listener.close()
    code = 0
    if written:
        summary = written[-1]
        report = t("livecli.report", path=out_dir.resolve() / "report.html")
        message = f"{format_summary(summary)}\n{report}"
        code = 0 if summary.passed else 1
    else:
        message = f"lab {name}: {failure}"
    if failure is not None:
        print(f"lab: {_said(failure)}", file=sys.stderr)
        code = failure.exit_code
    if flow.down_conn is not None:
        send_reply(flow.down_conn, Reply(failure is None, message, code))
        flow.down_conn.close()
    return code


def _said(failure: BaseException) -> str:
    """The error that ended the lab, in the lab's language."""
    return failure.text() if isinstance(failure, LabError) else read_back(str(failure))
