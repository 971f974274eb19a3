"""Running ``ip`` and other configuration commands for the netns backend."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

from lab.errors import BackendError

PARALLEL = 32  # per-namespace configuration commands run at once during up()
IP_TIMEOUT = 120.0  # a single `ip` invocation (a batch can hold thousands of commands)


def run_ip(args: Sequence[str], *, batch: Sequence[str] = (), check: bool = True) -> str:
    """Run ``ip <args>`` (with ``-batch -`` fed ``batch`` lines when given); its stdout.

    Batch lines are argument lists joined by spaces: ``ip`` splits them on whitespace
    itself, and every value placed in them is a validated name or an address, never
    anything with spaces or quotes (see ``check_token``).
    """
    argv = ["ip", *args]
    text: str | None = None
    if batch:
        argv += ["-batch", "-"]
        text = "".join(line + "\n" for line in batch)
    try:
        done = subprocess.run(
            argv, input=text, capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{' '.join(argv)}: {exc}") from exc
    if check and done.returncode != 0:
        raise BackendError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


_TOKEN_RE = re.compile(r"^[A-Za-z0-9._:/-]+$")


def check_token(value: str) -> str:
    """Refuse a value that could change the meaning of an ``ip -batch`` line."""
    if not _TOKEN_RE.match(value):
        raise BackendError(f"refusing unexpected characters in {value!r}")
    return value


def run_parallel(commands: Sequence[tuple[list[str], str | None]], what: str) -> None:
    """Run commands (argv, stdin text), at most PARALLEL at once; raise on the first failure.

    On any exception (KeyboardInterrupt included) every started command is killed and
    reaped before the exception goes on, so nothing keeps changing the host afterwards.
    """
    running: list[tuple[subprocess.Popen[str], list[str], str | None]] = []
    errors: list[str] = []

    def finish(entry: tuple[subprocess.Popen[str], list[str], str | None]) -> None:
        proc, argv, text = entry
        _, err = proc.communicate(text, timeout=IP_TIMEOUT)
        if proc.returncode != 0:
            errors.append(f"{' '.join(argv)}: {err.strip()}")

    try:
        for argv, text in commands:
            if len(running) >= PARALLEL:
                finish(running.pop(0))
            stdin = subprocess.PIPE if text is not None else subprocess.DEVNULL
            proc = subprocess.Popen(
                argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            running.append((proc, argv, text))
        while running:
            finish(running.pop(0))
    except BaseException:
        for proc, _, _ in running:
            proc.kill()
            proc.wait()
        raise
    if errors:
        raise BackendError(f"{what} failed: " + "; ".join(errors))
