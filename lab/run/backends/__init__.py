"""Backends: one module per way of providing hosts, all behind ``lab.run.backends.base.Backend``.

Modules are imported on demand so that, say, the netns backend works where the docker
SDK's engine is missing.
"""

from __future__ import annotations

import importlib

from lab.errors import BackendUnavailable
from lab.run.backends.base import Backend

# name -> (module, class): a fixed table, never an import built from user input.
BACKENDS: dict[str, tuple[str, str]] = {
    "netns": ("lab.run.backends.netns.backend", "NetnsBackend"),
    "docker": ("lab.run.backends.docker.backend", "DockerBackend"),
    "ssh": ("lab.run.backends.ssh.backend", "SshBackend"),
    "swarm": ("lab.run.backends.swarm.backend", "SwarmBackend"),
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name]
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def choose_backend(name: str) -> type[Backend]:
    """The backend class for ``--backend NAME``; ``auto`` prefers docker, then netns."""
    if name != "auto":
        cls = backend_class(name)
        reason = cls.available()
        if reason:
            raise BackendUnavailable(reason)
        return cls
    reasons = []
    for candidate in ("docker", "netns"):
        try:
            cls = backend_class(candidate)
        except ImportError as exc:  # a backend whose module is not there yet
            reasons.append(f"{candidate}: {exc}")
            continue
        reason = cls.available()
        if reason is None:
            return cls
        reasons.append(f"{candidate}: {reason}")
    raise BackendUnavailable("no backend can run here — " + "; ".join(reasons))
