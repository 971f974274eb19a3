"""Importing what a command needs at its end while its first part runs.

``lab run`` spends most of its time waiting on nodes, while the analysis and report
modules it needs only at the end (dpkt and the evidence parsers) take about a fifth of a
second to import, and several times that where no bytecode is cached. Imported in a
background thread once the run is idle (its clients holding their connections), they are
ready when the run ends and take no processor from the start of the run, when the lab
starts its captures, services and clients on the same cores. The caller joins the thread
before it uses them, so no module is ever used half-imported; an import error there is
raised by the caller's own import again.
"""

from __future__ import annotations

import contextlib
import importlib
import threading


class Preload:
    """``start()`` begins importing the modules in a daemon thread (once); calling the
    object waits until they are imported, starting the import first if nothing did."""

    def __init__(self, *modules: str) -> None:
        self.modules = modules
        self._thread = threading.Thread(target=self._work, name="preload", daemon=True)
        self._lock = threading.Lock()
        self._started = False

    def _work(self) -> None:
        for name in self.modules:
            with contextlib.suppress(Exception):  # the caller's own import says what failed
                importlib.import_module(name)

    def start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()

    def __call__(self) -> None:
        self.start()
        self._thread.join()


def preload(*modules: str) -> Preload:
    """The import of ``modules``, to ``start()`` when the command is idle and to wait on."""
    return Preload(*modules)
