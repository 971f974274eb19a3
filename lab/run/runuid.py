"""A uid of the run's own for the user's programs (``lab.programs.userprog --user``).

The kernel counts ``RLIMIT_NPROC`` per uid, across the host and every container on it
(without user namespaces a container's uids are the host's). Were all runs' programs one
user (nobody), a fork bomb in one lab would starve every other lab's programs of
processes, and one lab's program could signal another's. Each run's programs therefore
run as a uid of their own, in no account (no name, no home), from ``RUN_UIDS``.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from lab.errors import BackendError

RUN_UIDS = (61000, 65000)  # [first, end): far above the accounts a distribution makes


def lock_folder() -> Path:
    """Where runs claim their uids, one lock file per uid: the same for every run of this
    user (root's, for every lab on this host), whatever registry each one keeps."""
    return Path(tempfile.gettempdir()) / f"socket-lab-uids-{os.geteuid()}"


def claim_uid(run_id: str, folder: Path) -> tuple[int, int]:
    """A uid of RUN_UIDS that no other run holds, searched from the run id's own on, and
    the descriptor of its lock: an exclusive lock on ``folder``/UID, held until the
    descriptor is closed (or the process ends). Runs coordinate through one ``folder``
    (``lock_folder()``; a test's own keeps it apart)."""
    span = RUN_UIDS[1] - RUN_UIDS[0]
    start = int(run_id, 16) % span
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for step in range(span):
        uid = RUN_UIDS[0] + (start + step) % span
        fd = os.open(folder / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise BackendError(f"every uid {RUN_UIDS[0]}-{RUN_UIDS[1] - 1} is held by another run")
