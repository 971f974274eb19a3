"""What every fuzz target shares: the entry point that hands libFuzzer's bytes to a
target function and lets only the lab's own errors through."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

SEEDS = Path(__file__).parent / "seeds"


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
    # Coverage of every module loaded by now (the target imports its readers at the top).
    atheris.instrument_all()
    atheris.Setup(args, one_input)
    atheris.Fuzz()
