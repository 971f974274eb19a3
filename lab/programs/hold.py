"""How long a client holds a connection open: ``--hold`` seconds, and, with ``--release
FILE``, until the lab has looked at the held connections (it makes FILE once its "during"
snapshot is taken).

On a quiet machine the file is there long before the hold ends, and nothing changes. On a
busy one (a classroom of labs on two cores) the snapshot can come seconds late; without
the wait the connections would be gone by then, and the evidence of a fork or a thread per
connection with them. A lab that is gone never makes the file: the wait is bounded.
"""

from __future__ import annotations

import os
import time

RELEASE_WAIT = 60.0  # seconds at most past the hold
RELEASE_POLL = 0.02  # a stat() per look: the lab's word is a file, on every kind of node


def hold(seconds: float, release: str | None, limit: float = RELEASE_WAIT) -> None:
    """Sleep ``seconds``; then, if ``release`` is a path, wait until it exists (at most
    ``limit`` seconds more)."""
    if seconds > 0:
        time.sleep(seconds)
    if not release:
        return
    deadline = time.monotonic() + limit
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(RELEASE_POLL)
