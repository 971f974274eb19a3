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
