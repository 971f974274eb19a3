"""The swarm backend's ``--engines`` option, and the backend class a run's options choose."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import BackendUnavailable, UsageError

if TYPE_CHECKING:  # a plain import would load the backends for `lab validate` too
    from lab.run.backends.base import Backend


def add_engines_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engines",
        metavar="FILE",
        help="swarm: the Docker engine of each swarm node (hostname or ID -> unix://, "
        "tcp:// with TLS, or ssh:// URL); default: the engine of DOCKER_HOST alone",
    )


def choose(args: argparse.Namespace, name: str) -> type[Backend]:
    """The backend ``name``, usable here; the swarm backend on the file's engines."""
    from lab.run.backends import choose_backend

    engines = getattr(args, "engines", None)
    if name != "swarm":
        if engines:
            raise UsageError("--engines applies to --backend swarm")
        return choose_backend(name)
    from lab.run.backends.swarm import SwarmBackend, load_engines

    cls = SwarmBackend.configured(load_engines(Path(engines)) if engines else None)
    reason = cls.available()
    if reason:
        raise BackendUnavailable(reason)
    return cls
