"""Progress lines for long commands."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def progress_printer(stream: TextIO = sys.stderr) -> Callable[[str], None]:
    """Progress lines with the elapsed time, on stderr so that --json stdout stays clean."""
    start = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - start:6.1f}s] {message}", file=stream, flush=True)

    return say
