"""Bringing a host into a run: the pre-flight check, its temp dir and the uploaded files."""

from __future__ import annotations

import contextlib
import re
import secrets
import stat
import string
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import lab
from lab.errors import BackendError
from lab.run.backends.ssh import remote
from lab.run.backends.ssh.node import LAUNCHER, RemoteNode
from lab.spec.model import Node

MIN_PYTHON = (3, 11)
PREFLIGHT_TIMEOUT = 20.0
ROOT_RE = re.compile(r"^/tmp/socket-lab-ssh-[0-9a-f]{6}-[a-z0-9-]+\.[A-Za-z0-9]+$")


def upload_files() -> list[tuple[Path, str]]:
    """The stdlib-only part of the package a node needs: ``lab/__init__.py`` and
    ``lab/programs`` (code and the dictionary), as (local file, path under lib/)."""
    package = Path(lab.__file__).resolve().parent
    files = [(package / "__init__.py", "lab/__init__.py")]
    for path in sorted((package / "programs").iterdir()):
        if path.is_file() and path.suffix in (".py", ".tsv"):
            files.append((path, f"lab/programs/{path.name}"))
    return files


def new_root(run_id: str, node: str) -> str:
    """A fresh name for the node's temp dir, random like ``mktemp -d``'s."""
    suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))
    root = f"/tmp/socket-lab-ssh-{run_id}-{node}.{suffix}"
    assert ROOT_RE.match(root), root
    return root


def make_root(r: RemoteNode, root: str) -> None:
    """Make the temp dir (mode 0700, refused if it exists) and upload the programs into
    it, over SFTP, which costs no command (and no login shell) on the host."""
    with r.host.sftp() as sftp:
        try:
            sftp.mkdir(root, 0o700)
        except OSError as exc:
            raise BackendError(f"node {r.state.node}: cannot make {root}: {exc}") from None
        for sub in ("lib", "lib/lab", "lib/lab/programs", "work", "proc"):
            sftp.mkdir(f"{root}/{sub}", 0o755)
        for local, rel in upload_files():
            sftp.put(str(local), f"{root}/lib/{rel}")
        # As a file rather than `-c TEXT`: ps on the host then shows a short line.
        with sftp.open(f"{root}/lib/{LAUNCHER}", "w") as f:
            f.write(remote.LAUNCH)


def preflight(
    r: RemoteNode,
    node: Node,
    tools: Sequence[str] = (),
    ports: Sequence[tuple[str, int]] = (),
) -> list[str]:
    """Everything this host lacks for the lab, all of it, from one command; also learns
    its interfaces, whether commands need sudo, and the interpreter's real path. ``tools``
    are the commands the user programs it runs need (their compilers); ``ports`` the
    (protocol, port) its services will listen on, which must be free."""
    python = r.state.target.python
    argv = ["sh", "-c", remote.PREFLIGHT, "sh", python, *tools]
    found = remote.parse_preflight(r.check(argv, "pre-flight", timeout=PREFLIGHT_TIMEOUT))
    problems = _access_problems(r, found) + port_problems(found, ports)
    python_problem = _python_problem(python, found.version)
    if python_problem:
        return [*problems, python_problem]
    r.state.python = found.executable or None
    return problems + _network_problems(r, node, found)


def port_problems(found: remote.Found, ports: Sequence[tuple[str, int]]) -> list[str]:
    """A service's port already taken on the host: by another lab on the same machine (a
    run elsewhere, a grading under way) or by a program of the host's. Its server would
    fail to bind, or another's clients would reach it."""
    taken = sorted(set(ports) & found.listening)
    return [
        f"{proto} port {port} is already in use on this host (another lab running there, "
        "or a program of its own): stop it, or choose another port"
        for proto, port in taken
    ]


def _access_problems(r: RemoteNode, found: remote.Found) -> list[str]:
    """Root or passwordless sudo (remembered for later commands), and the tools."""
    problems: list[str] = []
    user = r.state.target.user
    if found.access == "sudo":
        r.state.sudo = True
    elif found.access != "root":
        problems.append(
            f"user {user!r} needs root or passwordless sudo (tcpdump needs root): log in "
            f"as root, or allow `{user} ALL=(ALL) NOPASSWD: ALL` in sudoers"
        )
    if found.missing:
        packages = " ".join(sorted({remote.TOOL_PACKAGES.get(t, t) for t in found.missing}))
        problems.append(f"missing {', '.join(found.missing)}: apt-get install {packages}")
    return problems


def _python_problem(python: str, version: str | None) -> str | None:
    if version is None:
        return f"no Python at {python!r}: install python3 (>= 3.11) or set ssh.python"
    if tuple(int(x) for x in version.split(".")) < MIN_PYTHON:
        return (
            f"{python} is Python {version}; the lab needs 3.11 or newer: install it or point "
            "ssh.python at one"
        )
    return None


def _network_problems(r: RemoteNode, node: Node, found: remote.Found) -> list[str]:
    """Each topology address on some interface (learnt as the node's), and the gateway."""
    problems: list[str] = []
    for iface in node.interfaces:
        name = found.addresses.get(str(iface.address))
        if name is None:
            problems.append(
                f"no interface has address {iface.address} (network {iface.network}): give "
                "the host's real address in the topology"
            )
        else:
            r.ifaces[iface.network] = name
    if node.gateway is not None and found.gateway != str(node.gateway):
        problems.append(
            f"its default route is via {found.gateway or 'nothing'}, not the topology's "
            f"gateway {node.gateway}"
        )
    return problems


def upload_tree(r: RemoteNode, sources: Sequence[Path], folder: PurePosixPath) -> None:
    """Copy sources (files and folders, not symlinks) into ``folder`` over SFTP, readable by
    every user: the user's program runs unprivileged. The temp dir becomes traversable
    (0711), not listable, so that user can reach its folder and nothing else by name."""
    with r.host.sftp() as sftp:
        sftp.chmod(str(r.root), 0o711)
        for d in (folder.parent, folder):
            with contextlib.suppress(OSError):
                sftp.mkdir(str(d), 0o755)
            sftp.chmod(str(d), 0o755)
        for src in sources:
            _put(sftp, src, folder / src.name)


def _put(sftp: Any, local: Path, remote_path: PurePosixPath) -> None:
    mode = local.lstat().st_mode
    if stat.S_ISDIR(mode):
        with contextlib.suppress(OSError):
            sftp.mkdir(str(remote_path), 0o755)
        for child in sorted(local.iterdir()):
            _put(sftp, child, remote_path / child.name)
    elif stat.S_ISREG(mode):
        sftp.put(str(local), str(remote_path))
        sftp.chmod(str(remote_path), (mode & 0o755) | 0o444)
