"""A finished results folder made safe to keep: nobody but its owner can change it.

Evidence is copied out of the nodes with the modes it had there, and the files a run
writes itself follow the umask, so a folder could end up group- or world-writable (the
netns work directories once were 1777). Once a run has ended, every folder and file under
the results folder loses group and other write permission and any set-id or sticky bit:
folders become 0755 and files 0644, or tighter. When the lab runs as root through
``sudo``, everything the run wrote is handed to the user who typed the command
(``SUDO_UID``/``SUDO_GID``), since it is their evidence; otherwise it stays with the user
who ran the lab. Symbolic links are never followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_CLEARED = stat.S_IWGRP | stat.S_IWOTH | stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


def sudo_owner() -> tuple[int, int] | None:
    """The uid and gid of the user who ran ``sudo lab ...``, when running as root by sudo."""
    if os.geteuid() != 0:
        return None
    try:
        uid, gid = int(os.environ["SUDO_UID"]), int(os.environ["SUDO_GID"])
    except (KeyError, ValueError):
        return None
    return (uid, gid) if uid > 0 else None


def seal_results(out_dir: Path) -> list[str]:
    """Tighten the modes (and, under sudo, the owner) of everything under ``out_dir``;
    returns what could not be changed, one line each, for the run's teardown errors."""
    owner = sudo_owner()
    problems: list[str] = []
    entries = [out_dir]
    for folder, dirs, files in os.walk(out_dir):
        entries += [Path(folder, name) for name in (*dirs, *files)]
    for path in entries:
        try:
            _seal(path, owner)
        except OSError as exc:
            problems.append(f"{path}: cannot tighten its permissions: {exc.strerror or exc}")
    return problems


def _seal(path: Path, owner: tuple[int, int] | None) -> None:
    st = os.lstat(path)
    if owner is not None:
        os.chown(path, *owner, follow_symlinks=False)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return  # a link is not followed; nothing else belongs in results
    if not stat.S_IMODE(st.st_mode) & _CLEARED:
        return
    # Through a descriptor opened without following links: should the path have been
    # swapped for a link meanwhile, the link's target is not the one changed.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            os.fchmod(fd, stat.S_IMODE(now.st_mode) & ~_CLEARED)
    finally:
        os.close(fd)
