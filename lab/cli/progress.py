"""Progress lines for long commands."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import TextIO


def progress_printer(stream: TextIO = sys.stderr) -> Callable[[str], None]:
    """Progress lines with the elapsed time, on stderr so that --json stdout stays clean."""
    start = time.monotonic()

    def say(message: str) -> None:
        # The reader may go away (`lab run 2>&1 | head`): the run goes on to its end and its
        # teardown; only its progress is no longer seen.
        with contextlib.suppress(OSError, ValueError):
            print(f"[{time.monotonic() - start:6.1f}s] {message}", file=stream, flush=True)

    return say
