"""The tar archives the engine takes and gives: a node's files copied in, its folders out."""

from __future__ import annotations

import tarfile
from contextlib import suppress
from pathlib import Path, PurePosixPath
from typing import IO, Any


def extract(buf: IO[bytes] | Any, local_dir: Path) -> None:
    """Unpack the engine's archive of a directory into ``local_dir``, safely: the "data"
    filter refuses absolute paths, ``..``, device files and links leaving the target;
    such members are skipped."""
    with tarfile.open(fileobj=buf, mode="r|") as archive:
        for member in archive:
            # Members are "<dir's base name>/...": keep what is below the directory.
            parts = PurePosixPath(member.name).parts
            rel = PurePosixPath(*parts[1:]) if len(parts) > 1 else None
            if rel is None:
                continue
            member.name = str(rel)
            # A member the filter refuses (say a link to /etc/passwd) is left out: it
            # is nothing the lab wrote, and must not stop the rest from being copied.
            with suppress(tarfile.FilterError):
                archive.extract(member, local_dir, filter="data")


def readable(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """Sources as the run user may read them, owned by root."""
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    member.mode = (member.mode & 0o755) | (0o755 if member.isdir() else 0o444)
    return member
