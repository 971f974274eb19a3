"""The tar archives the engine sends and takes: a node's folder out, sources in."""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path, PurePosixPath
from typing import Any


def unpack(stream: Iterable[bytes], local_dir: Path) -> None:
    """Unpack an archive the engine streams (``get_archive``) into ``local_dir``."""
    with tempfile.TemporaryFile() as buf:
        for chunk in stream:
            buf.write(chunk)
        buf.seek(0)
        extract(buf, local_dir)


def extract(buf: io.IOBase | Any, local_dir: Path) -> None:
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
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    member.mode = (member.mode & 0o755) | (0o755 if member.isdir() else 0o444)
    return member
