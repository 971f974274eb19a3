"""Where a run writes its evidence: a folder that is new or empty, never one that holds
another run's files."""

from __future__ import annotations

import time
from pathlib import Path

from lab.errors import LabError, UsageError
from lab.spec.model import Topology


def default_out_dir(topology: Topology) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path("results") / f"{topology.name}-{stamp}"


_CHOOSE = "choose another with --out, or leave --out off for results/<topology>-<UTC time>"


def claim_results_folder(topology: Topology, out: str | None, *, create: bool = True) -> Path:
    """The folder a run writes to, checked before anything is created, so that a run never
    replaces evidence it did not make. ``--out`` must be new or an empty folder (a new one
    is created here, atomically, unless ``create`` is false: then it is only checked); the
    default folder is always created here, with a ``-2``, ``-3``... suffix when a run of
    the same topology started in the same second already holds the name."""
    if out is None:
        base = default_out_dir(topology)
        for n in range(1, 1000):
            candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
            try:
                candidate.mkdir(parents=True)
            except FileExistsError:
                continue
            except OSError as exc:
                raise LabError(f"cannot create the results folder {candidate}: {exc}") from exc
            return candidate
        raise LabError(f"{base}: 999 results folders of this second exist already")
    if not out:
        raise UsageError(f"--out '' names no folder; {_CHOOSE}")
    path = Path(out)
    if path.is_symlink() and not path.exists():
        raise UsageError(f"{path}: a dangling symbolic link; {_CHOOSE}")
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{path}: exists and is not a folder; {_CHOOSE}")
        if any(path.iterdir()):
            raise UsageError(f"{path}: the folder is not empty (earlier evidence?); {_CHOOSE}")
    elif create:
        try:
            path.mkdir(parents=True)
        except FileExistsError:  # another run took it since the check above
            raise UsageError(f"{path}: another run created it just now; {_CHOOSE}") from None
        except OSError as exc:
            raise LabError(f"cannot create the results folder {path}: {exc}") from exc
    return path
