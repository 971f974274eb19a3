"""What every fuzz target shares: the entry point that hands libFuzzer's bytes to a
target function and lets only the lab's own errors through."""

from __future__ import annotations

import contextlib
import gc
import sys
import types
from collections.abc import Callable
from pathlib import Path

SEEDS = Path(__file__).parent / "seeds"
# Whose code gives the fuzzer its coverage: the lab's readers, the targets, and PyYAML's
# parser (pure Python), which the topology target goes through.
COVERED = ("lab", "tests", "yaml")


def covered(func: Callable[..., object]) -> bool:
    return (getattr(func, "__module__", None) or "").split(".")[0] in COVERED


def main(target: Callable[[bytes], None], seeds: str) -> None:
    """Fuzz ``target`` starting from ``seeds/<seeds>/`` (and any extra libFuzzer arguments
    given on the command line). Any exception that is not a ``LabError`` is a finding."""
    import atheris

    from lab.errors import LabError

    def one_input(data: bytes) -> None:
        with contextlib.suppress(LabError):
            target(data)

    corpus = SEEDS / seeds
    args = [sys.argv[0], *sys.argv[1:]]
    if corpus.is_dir():
        args.append(str(corpus))
    # Coverage of the code that matters, loaded by now (the target imports its readers at
    # the top). atheris.instrument_all() would take the whole standard library too: 4,891
    # functions, 36 s before the first input on this project's machines, per target.
    for func in [obj for obj in gc.get_objects() if isinstance(obj, types.FunctionType)]:
        if covered(func):
            atheris.instrument_func(func)
    atheris.Setup(args, one_input)
    atheris.Fuzz()
