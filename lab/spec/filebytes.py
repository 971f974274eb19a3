"""Reading the bytes of a file a user names, bounded in size and in time.

A topology (or any other small input) is read from a regular file or from a pipe: shells
hand ``lab validate <(generate)`` over as ``/dev/fd/N``, so pipes and FIFOs are accepted,
read without blocking and given at most ``wait`` seconds in all. Anything else (a device
such as ``/dev/zero``, a folder, a socket) is refused before it is opened. At most
``limit + 1`` bytes are ever read, so an endless source costs no more than that.
"""

from __future__ import annotations

import os
import select
import stat
import time
from pathlib import Path

MAX_FILE_BYTES = 1 << 20
PIPE_WAIT_SECONDS = 5.0
_CHUNK = 1 << 16


class InputRefused(Exception):
    """The file cannot be read as input; the message says why, in words for a user."""


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    for test, name in kinds:
        if test(mode):
            return name
    return "not a file"


def read_limited(
    path: Path, limit: int, *, wait: float = PIPE_WAIT_SECONDS, pipes: bool = True
) -> bytes:
    """The file's bytes, at most ``limit`` of them; raises ``InputRefused`` for a file that
    is larger, that is neither a regular file nor (with ``pipes``) a pipe, or a pipe
    silent for ``wait`` s."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputRefused(f"cannot read the file: {exc.strerror or exc}") from exc
    if stat.S_ISFIFO(mode) and not pipes:
        raise InputRefused("not a regular file (a FIFO)")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise InputRefused(f"not a regular file ({_kind(mode)})")
    try:
        # O_NONBLOCK: opening a FIFO nobody writes would otherwise block for ever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputRefused(f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        mode = os.fstat(fd).st_mode  # what was opened, should the path have changed since
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            data = _read_upto(fd, limit + 1, wait=None)
        elif stat.S_ISFIFO(mode) and pipes:
            data = _read_upto(fd, limit + 1, wait=wait)
        else:
            raise InputRefused(f"not a regular file ({_kind(mode)})")
    except OSError as exc:
        raise InputRefused(f"cannot read the file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputRefused(f"the file is larger than {limit} bytes")
    return data


def _read_upto(fd: int, most: int, wait: float | None) -> bytes:
    """Up to ``most`` bytes until end of file; on a pipe, only for ``wait`` seconds."""
    deadline = None if wait is None else time.monotonic() + wait
    chunks: list[bytes] = []
    got = 0
    while got < most:
        if deadline is not None and wait is not None:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0.0))
            if not ready:
                what = "no data" if not got else f"only {got} bytes and no end"
                raise InputRefused(
                    f"{what} within {wait:g} s from this pipe or FIFO (is anything writing to it?)"
                )
        try:
            chunk = os.read(fd, min(_CHUNK, most - got))
        except BlockingIOError:  # woken without data: wait again
            continue
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_text(path: Path) -> tuple[str | None, str | None]:
    """The file's text, or a located problem saying why it cannot be read. At most the
    size limit is read, from a regular file or a pipe (``<(...)``), never a device."""
    try:
        data = read_limited(path, MAX_FILE_BYTES)
    except InputRefused as exc:
        return None, f"{path}:1: (document): {exc}"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, f"{path}:{line}: (document): not UTF-8 text ({exc.reason})"
