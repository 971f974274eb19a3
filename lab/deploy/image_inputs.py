"""What goes into the lab's images, and the hashes that name them.

One package list (``images/packages.txt``) feeds both ways of making the base (see
``lab.deploy.images``); the node image adds ``lab/__init__.py`` and ``lab/programs/``.
Every image is tagged and labelled with a hash of its inputs, so a build whose image
already exists does nothing. The names in the hash (``images/...``) are fixed: moving the
files does not change it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import lab
from lab.data import IMAGES_DIR
from lab.errors import LabError

Progress = Callable[[str], None]

IMAGE_LABEL = "socket-lab.image"
HASH_LABEL = "socket-lab.hash"
BASE_ID_LABEL = "socket-lab.base-id"
NODE_REPO = "socket-lab-node"
REPORT_REPO = "socket-lab-report"
BASE_REPO = "socket-lab-base"
UPSTREAM_BASE = "debian:bookworm-slim"

# Bump when the offline recipe (lab.deploy.offline) changes in a way that changes the base.
OFFLINE_RECIPE = "1"

PACKAGE_DIR = Path(lab.__file__).resolve().parent


class ImageBuildError(LabError):
    """An image could not be built; the message says which step failed and why."""


class PullFailed(ImageBuildError):
    """The ordinary base (``debian:bookworm-slim``) could not be pulled."""


def packages(images_dir: Path = IMAGES_DIR) -> list[str]:
    """The package list, comments and blank lines dropped."""
    text = (images_dir / "packages.txt").read_text()
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [n for n in names if n]


def program_files(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """``lab/__init__.py`` and every program file, relative to the package, sorted."""
    files = [Path("__init__.py")]
    programs = package_dir / "programs"
    if programs.is_dir():
        for path in sorted(programs.rglob("*")):
            rel = path.relative_to(package_dir)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                files.append(rel)
    return files


def package_files(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Every file of the lab's package but its compiled bytecode, relative to it, sorted."""
    return [
        path.relative_to(package_dir)
        for path in sorted(package_dir.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def digest(parts: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        # Length-prefixed, so that moving bytes between two parts changes the hash.
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def node_hash() -> str:
    """Hash of everything that goes into the node image, whichever way its base is made."""
    parts = [
        (f"images/{name}", (IMAGES_DIR / name).read_bytes())
        for name in ("packages.txt", "Dockerfile", "node.Dockerfile")
    ]
    parts += [(f"lab/{rel}", (PACKAGE_DIR / rel).read_bytes()) for rel in program_files()]
    parts.append(("offline-recipe", OFFLINE_RECIPE.encode()))
    return digest(parts)


def ordinary_base_hash() -> str:
    return digest(
        [
            ("images/packages.txt", (IMAGES_DIR / "packages.txt").read_bytes()),
            ("images/Dockerfile", (IMAGES_DIR / "Dockerfile").read_bytes()),
        ]
    )


def report_hash() -> str:
    """Hash of the report image: the node image's inputs and the whole lab package."""
    parts = [("node", node_hash().encode())]
    parts += [(f"lab/{rel}", (PACKAGE_DIR / rel).read_bytes()) for rel in package_files()]
    return digest(parts)
