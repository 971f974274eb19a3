"""Importing what a command needs at its end while its first part runs.

``lab run`` spends most of its time waiting on nodes, while the analysis and report
modules it needs only at the end (dpkt and the evidence parsers) take about half a
second to import: imported in a background thread meanwhile, they are ready when the
run ends. The caller joins the thread before it uses them, so no module is ever used
half-imported; an import error there is raised by the caller's own import again.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable


def preload(*modules: str) -> Callable[[], None]:
    """Start importing ``modules`` in a daemon thread; returns the wait for it to end."""

    def work() -> None:
        for name in modules:
            with contextlib.suppress(Exception):  # the caller's own import says what failed
                importlib.import_module(name)

    thread = threading.Thread(target=work, name="preload", daemon=True)
    thread.start()
    return thread.join
