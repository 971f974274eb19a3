"""``python3 -m lab.cli``: the ``lab`` command."""

from lab.cli import entry

entry()
