"""``--lang``: the language of what a command writes for people."""

from __future__ import annotations

import argparse

from lab.i18n import LANGS

HELP = (
    "language of the report and the terminal summary: en or zh (default: from LC_ALL, "
    "LC_MESSAGES or LANG, zh_* giving zh; else en)"
)


def add_lang_option(p: argparse.ArgumentParser) -> None:
    """summary.json, run.json and the grades' JSON are the same in every language."""
    p.add_argument("--lang", choices=LANGS, help=HELP)
