"""``--lang``: the language of what a command writes for people, chosen before the
arguments are parsed, so that argparse's own refusals (a bad flag, a missing argument)
and every error raised before a run are in it too."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from lab.i18n import LANGS, choose_lang, reread, t

HELP = (
    "language of the report and the terminal summary: en or zh (default: from LC_ALL, "
    "LC_MESSAGES or LANG, zh_* giving zh; else en)"
)


def add_lang_option(p: argparse.ArgumentParser) -> None:
    """summary.json, run.json and the grades' JSON are the same in every language."""
    p.add_argument("--lang", choices=LANGS, help=HELP)


def lang_of(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The language ``argv`` asks for (``--lang X`` or ``--lang=X`` before any ``--``),
    else the locale's. An unknown one is left for argparse to refuse."""
    given = None
    for i, word in enumerate(argv):
        if word == "--":
            break
        if word == "--lang" and i + 1 < len(argv):
            given = argv[i + 1]
        elif word.startswith("--lang="):
            given = word.split("=", 1)[1]
    return choose_lang(given if given in LANGS else None, environ)


class LabParser(argparse.ArgumentParser):
    """argparse's refusals in the current language: its English message read back by the
    catalogue's ``argparse.`` messages (left as it is when none reads it)."""

    def error(self, message: str) -> NoReturn:
        usage = self.format_usage()
        if usage.startswith("usage: "):
            usage = t("argparse.usage") + usage[len("usage: ") :]
        sys.stderr.write(usage)
        said = reread(message, "argparse.")
        self.exit(2, t("argparse.error", prog=self.prog, message=said) + "\n")


def add_lang_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--lang`` on every command that has none yet (validate, ls, down ...): their
    refusals are in the language too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                add_lang_everywhere(sub)
            return
    if "--lang" not in parser._option_string_actions:
        add_lang_option(parser)
