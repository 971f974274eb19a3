"""Files the lab ships beside its code: the node images' build files and the example
topologies with the course's experiments.

They live inside the package so that an installed wheel has them; the repository's
top-level ``images/`` and ``topologies/`` are symbolic links to these folders. Standard
library only, like ``lab/__init__.py``: nothing here depends on the rest of the lab.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
IMAGES_DIR = DATA_DIR / "images"
TOPOLOGIES_DIR = DATA_DIR / "topologies"
EXPERIMENTS_DIR = TOPOLOGIES_DIR / "experiments"

# The shipped topology files, as globs under TOPOLOGIES_DIR (pyproject.toml ships the same).
SHIPPED_TOPOLOGIES = (
    "*.yaml",
    "README.md",
    "experiments/*.yaml",
    "experiments/c/*.yaml",
    "experiments/programs/*.py",
)

# An experiment's implementations: experiments/NAME.yaml runs the lab's Python programs,
# experiments/c/NAME.yaml (when there is one) the course's C twins; a spot-the-bug
# experiment (experiments/bug-*.yaml) runs the C variants of the course notes only.
IMPLS = ("python", "c")
BUG_PREFIX = "bug-"


def experiment_names() -> list[str]:
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def experiment_impls(name: str) -> tuple[str, ...]:
    """The implementations ``name`` can run with, the default first."""
    if name.startswith(BUG_PREFIX):
        return ("c",)
    return ("python", "c") if (EXPERIMENTS_DIR / "c" / f"{name}.yaml").is_file() else ("python",)


def experiment_file(name: str, impl: str | None) -> Path | None:
    """The file of ``name`` run with ``impl`` (None: its default); None when it has none."""
    impls = experiment_impls(name)
    impl = impl or impls[0]
    if impl not in impls:
        return None
    if impl == "c" and not name.startswith(BUG_PREFIX):
        return EXPERIMENTS_DIR / "c" / f"{name}.yaml"
    return EXPERIMENTS_DIR / f"{name}.yaml"


def shipped_topologies() -> list[Path]:
    """The example topologies, their README and the experiments, relative to
    ``TOPOLOGIES_DIR``, sorted."""
    found = {p for pattern in SHIPPED_TOPOLOGIES for p in TOPOLOGIES_DIR.glob(pattern)}
    return sorted(p.relative_to(TOPOLOGIES_DIR) for p in found if p.is_file())


def copy_topologies(dest: Path) -> list[Path]:
    """Copy the shipped topologies into ``dest`` (created if missing); returns the copies.
    An existing file of the same name is overwritten: callers check ``dest`` first."""
    copies = []
    for rel in shipped_topologies():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((TOPOLOGIES_DIR / rel).read_bytes())
        copies.append(target)
    return copies
