"""The supervisor's children: started jobs and captures, their output copied line by line
to the supervisor's own and to log files.

Standard library only: this runs inside the node image.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class Child:
    """A running job or capture, with threads copying its output to ours and a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    pumps: list[threading.Thread] = field(default_factory=list)

    def status(self) -> int | None:
        code = self.proc.poll()
        return None if code is None else code

    def signal(self, signum: int) -> None:
        # send_signal does nothing once the child has been reaped; the suppress covers
        # the moment between its exit and the reaping.
        with suppress(ProcessLookupError):
            self.proc.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for pump in self.pumps:
            pump.join(timeout=2.0)
        return code


class LogFile:
    """One job's log, written by both of its pump threads a whole line at a time. With a
    ``cap`` (a user's program: ``lab run`` caps its log), the lines past it are dropped
    and ``truncated`` says so."""

    def __init__(self, path: Path, cap: int | None = None) -> None:
        self.file = path.open("wb")
        self.lock = threading.Lock()
        self.writers = 0
        self.room = cap
        self.truncated = False

    def write(self, line: bytes) -> bool:
        """Whether the line was kept."""
        with self.lock:
            if self.room is not None:
                if len(line) > self.room or self.truncated:
                    self.truncated = True
                    return False
                self.room -= len(line)
            self.file.write(line)
            self.file.flush()
            return True

    def release(self) -> None:
        with self.lock:
            self.writers -= 1
            if self.writers <= 0:
                self.file.close()


def pump(
    stream: IO[bytes],
    sink: int,
    prefix: bytes,
    log: LogFile | None,
    on_line: Callable[[bytes], None] | None = None,
) -> threading.Thread:
    """Copy ``stream`` line by line to file descriptor ``sink`` (prefixed) and to ``log``."""
    if log is not None:
        log.writers += 1

    def run() -> None:
        for raw in iter(stream.readline, b""):
            line = raw if raw.endswith(b"\n") else raw + b"\n"
            # A line past a capped log's end is not shown either: a flood stops here.
            if log is None or log.write(line):
                os.write(sink, prefix + line)
            if on_line is not None:
                on_line(line)
        stream.close()
        if log is not None:
            log.release()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def describe_status(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"
