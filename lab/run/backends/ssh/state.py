"""The run's state file: what a run put on each host, readable by a later process.

One JSON file per run under ``state_dir()``, written atomically and private to its user,
lets ``clean`` and ``running_labs`` find a run's hosts after its owner was killed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lab.run.backends.base import process_start
from lab.spec.model import SshTarget


def state_dir() -> Path:
    return Path(os.environ.get("SOCKET_LAB_STATE", "/run/socket-lab")) / "ssh"


def state_path(run_id: str) -> Path:
    return state_dir() / f"{run_id}.json"


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def target_from(data: Mapping[str, Any]) -> SshTarget:
    jump = data.get("jump")
    fields = {k: v for k, v in data.items() if k != "jump"}
    return SshTarget(**fields, jump=target_from(jump) if jump else None)


@dataclass
class HostState:
    """What a run has put on one host; mirrored in the state file."""

    node: str
    target: SshTarget
    sudo: bool = False
    root: str | None = None
    python: str | None = None  # the interpreter's real path, learnt at pre-flight
    procs: list[tuple[int, str]] = field(default_factory=list)
    impaired: list[str] = field(default_factory=list)  # interfaces given a qdisc of the lab's

    def to_json(self) -> dict[str, Any]:
        return {
            "target": asdict(self.target),
            "sudo": self.sudo,
            "root": self.root,
            "python": self.python,
            "procs": [list(p) for p in self.procs],
            "impaired": list(self.impaired),
        }


def write_state(run_id: str, known_hosts: Path, states: Mapping[str, HostState]) -> None:
    """Replace run ``run_id``'s state file with ``states`` in one step."""
    data = {
        "run_id": run_id,
        "pid": os.getpid(),
        "pid_start": process_start(os.getpid()),
        "known_hosts": str(known_hosts),
        "hosts": {name: s.to_json() for name, s in states.items()},
    }
    folder = state_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / f".{run_id}.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, state_path(run_id))


def state_from(node: str, info: Mapping[str, Any]) -> HostState:
    """A host's state as a state file records it."""
    return HostState(
        node,
        target_from(info["target"]),
        sudo=bool(info.get("sudo")),
        root=info.get("root"),
        python=info.get("python"),
        procs=[(int(p), str(s)) for p, s in info.get("procs", [])],
        impaired=[str(i) for i in info.get("impaired", [])],
    )


def hosts_of(data: Mapping[str, Any]) -> list[str]:
    """``node=user@host:port`` for each host a state file records."""
    hosts = []
    for node, info in sorted(data.get("hosts", {}).items()):
        try:
            hosts.append(f"{node}={target_from(info['target'])}")
        except (KeyError, TypeError):
            hosts.append(f"{node}=?")
    return hosts


def resolve_keys(target: SshTarget, base: Path) -> SshTarget:
    """Key paths made absolute: ``~`` expanded, relative ones from the topology's folder."""
    key = str(base / Path(target.key).expanduser()) if target.key else None
    jump = resolve_keys(target.jump, base) if target.jump else None
    return replace(target, key=key, jump=jump)
