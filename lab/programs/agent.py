"""A node's command runner for the lab: one process started once per container, which runs
the lab's foreground commands (snapshots, probes, clients) as the lab asks, so that each
command is a fork and exec in the node rather than an exec through the engine's API.

    python3 -S -m lab.programs.agent

Requests on stdin, one JSON object a line: ``{"id": N, "argv": [...], "input": TEXT or
null, "timeout": SECONDS}``. Each runs in a thread of its own, in a session of its own;
the answer is one line on stdout, in the order the commands end: ``{"id": N, "rc": CODE,
"out": TEXT, "err": TEXT}``, or ``{"id": N, "timeout": true}`` once the command has been
stopped for running past its timeout (SIGTERM to its process group, SIGKILL 2 s later), or
``{"id": N, "error": TEXT}`` when it could not start. A command killed by signal N exits
128+N, as under ``timeout(1)``. At the end of stdin the agent exits; the commands still
running are killed with their groups, those whose start was under way too, and a request
read but not yet started never starts.

Background processes (services, captures) are started with ``{"id": N, "spawn": [...],
"log": PATH}``: in a session of their own, stdout and stderr into PATH, answered at once
with ``{"id": N, "pid": PID}``. ``{"id": N, "status": PID}`` answers ``{"id": N,
"running": BOOL, "rc": CODE or null}`` for such a process (CODE as above). They are left
running when the agent exits: the lab stops them, and the container's end ends them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

KILL_GRACE = 2.0  # seconds between the SIGTERM of a command past its timeout and SIGKILL

_write = threading.Lock()
# Held while a command starts and is recorded, and while the end of stdin takes the list to
# stop: so a command is either in that list or never started.
_starting = threading.Lock()
_ended = False  # stdin has ended: no command starts any more (set and read under _starting)
_running: dict[int, subprocess.Popen[bytes]] = {}
_spawned: dict[int, subprocess.Popen[bytes]] = {}  # by pid


def answer(reply: dict[str, Any]) -> None:
    line = (json.dumps(reply) + "\n").encode()
    with _write:
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()


def _kill_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def run(request: dict[str, Any]) -> None:
    ident = request["id"]
    data = request.get("input")
    failed: str | None = None  # why the command could not start
    with _starting:
        if _ended:
            return  # the agent is ending: nobody is left to read an answer
        try:
            proc = subprocess.Popen(
                [str(a) for a in request["argv"]],
                stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its group is stopped whole on a timeout
            )
        except OSError as exc:
            failed = f"{exc.strerror or exc}: {request['argv'][0]}"
        else:
            _running[ident] = proc
    if failed is not None:
        # Answered outside the lock: a slow reader of stdout must not hold up other starts,
        # nor the end of stdin.
        answer({"id": ident, "error": failed})
        return
    try:
        stdin = data.encode() if data is not None else None
        try:
            out, err = proc.communicate(stdin, timeout=float(request["timeout"]))
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGTERM)
            try:
                proc.communicate(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.communicate()
            answer({"id": ident, "timeout": True})
            return
        answer({"id": ident, "rc": _code(proc.returncode), "out": out.decode(errors="replace"),
                "err": err.decode(errors="replace")})  # fmt: skip
    finally:
        _running.pop(ident, None)


def _code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


def spawn(request: dict[str, Any]) -> None:
    ident = request["id"]
    try:
        with open(str(request["log"]), "wb") as log:
            proc = subprocess.Popen(
                [str(a) for a in request["spawn"]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # signalled by the lab alone, not with the agent
            )
    except OSError as exc:
        answer({"id": ident, "error": f"{exc.strerror or exc}: {request['spawn'][0]}"})
        return
    _spawned[proc.pid] = proc
    answer({"id": ident, "pid": proc.pid})
    proc.wait()  # reaped here, its status kept for the lab's next look


def status(request: dict[str, Any]) -> None:
    proc = _spawned.get(int(request["status"]))
    if proc is None:
        answer({"id": request["id"], "error": f"no process {request['status']} of this agent"})
        return
    code = proc.poll()
    answer({"id": request["id"], "running": code is None,
            "rc": None if code is None else _code(code)})  # fmt: skip


def handler(request: Any) -> Any:
    """The function that answers ``request``, or None when it is not a request."""
    if not isinstance(request, dict) or "id" not in request:
        return None
    if request.get("argv"):
        return run
    if request.get("spawn") and isinstance(request.get("log"), str):
        return spawn
    if isinstance(request.get("status"), int):
        return status
    return None


def main() -> int:
    global _ended
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        target = handler(request)
        if target is None:
            answer({"id": None, "error": f"not a request: {line[:200]!r}"})
            continue
        threading.Thread(target=target, args=(request,), daemon=True).start()
    with _starting:
        _ended = True
        running = list(_running.values())
    for proc in running:
        _kill_group(proc, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
