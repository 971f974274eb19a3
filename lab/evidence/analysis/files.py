"""Opening the files of a results folder: regular files only, never through a symbolic
link, never more than a bound. A results folder is written by the lab, so anything else
(a link to ``/dev/zero``, a FIFO, a capture of gigabytes) is refused with the file named,
before a byte is read: reading it could hang or exhaust memory."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lab.errors import LabError

MIB = 1024 * 1024
# A course lab's capture is kilobytes to a few megabytes; decoded packets take about ten
# times the file's size in memory, so this keeps the analysis of one capture under 1 GiB.
MAX_CAPTURE_BYTES = 64 * MIB
# `ps -e` on a netns node lists every process of the machine: some hundred kilobytes.
MAX_TEXT_BYTES = 16 * MIB


class EvidenceFileError(LabError):
    """An evidence file cannot be read at all: missing, not a regular file, too large, or
    not a capture. ``problem`` is the text without the file name."""

    exit_code = 2

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Damage:
    """Where a readable file is damaged: the byte ``offset`` and 1-based ``record`` (a
    capture's frame number) when known, and what is wrong there."""

    problem: str
    offset: int | None = None
    record: int | None = None

    def __str__(self) -> str:
        where = []
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.offset is not None:
            where.append(f"at byte {self.offset}")
        return f"{' '.join(where)}: {self.problem}" if where else self.problem


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
        stat.S_ISLNK: "a symbolic link",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def refusal(path: Path, limit: int) -> str | None:
    """Why ``path`` would be refused (without opening it), or None when it is a regular
    file within ``limit`` bytes or does not exist."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return _link_problem(path)
    if not stat.S_ISREG(st.st_mode):
        return f"{_kind(st.st_mode)}, not a regular file"
    if st.st_size > limit:
        return _size_problem(st.st_size, limit)
    return None


def _link_problem(path: Path) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"a symbolic link (to {target}); evidence files must be regular files"


def _size_problem(size: int, limit: int) -> str:
    return f"{size} bytes, more than the {limit // MIB} MiB the analysis reads"


def open_regular(path: Path, limit: int) -> BinaryIO:
    """``path`` opened for reading. O_NOFOLLOW refuses a link and O_NONBLOCK keeps a FIFO
    without a writer from blocking the open; the type and size are then checked on the
    opened file itself, so nothing can be swapped in between."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise EvidenceFileError(path, "no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EvidenceFileError(path, _link_problem(path)) from None
        raise EvidenceFileError(path, f"cannot be read ({exc.strerror})") from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = f"{_kind(st.st_mode)}, not a regular file"
    elif st.st_size > limit:
        problem = _size_problem(st.st_size, limit)
    if problem is not None:
        os.close(fd)
        raise EvidenceFileError(path, problem)
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, limit: int) -> bytes:
    """The whole file, refused beyond ``limit`` bytes (also when it grew since opened)."""
    with open_regular(path, limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise EvidenceFileError(path, _size_problem(len(data), limit))
    return data


def read_text(path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    """A snapshot or log as text. Bytes that are not UTF-8 (a program name in another
    encoding in ``ps`` output) become U+FFFD: the rest of the snapshot is still evidence."""
    return decode_text(read_bytes(path, limit))[0]


def decode_text(data: bytes) -> tuple[str, Damage | None]:
    """``data`` as text, bytes that are not UTF-8 read as U+FFFD, and where the first such
    byte is (None when all of it is UTF-8). Linear in the size, however many bad bytes."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        first = exc.start
    text = data.decode("utf-8", errors="replace")
    # Each undecodable sequence became one U+FFFD; those the file itself held are not counted.
    places = text.count("\ufffd") - data.count("\ufffd".encode())
    many = f"{places} places" if places > 1 else "1 place"
    return text, Damage(f"not UTF-8 ({many} read as U+FFFD)", offset=first)
