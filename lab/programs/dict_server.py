"""English->Chinese dictionary server over TCP (default port 8080), one thread per client.

Protocol: UTF-8 lines. Each request line is one word; the reply is one line, the word's
translation, or the word itself (as sent, without its line ending) when it is unknown or
not valid UTF-8. Lookup tries the word as given, then in lower case.
The words live in ``dictionary.tsv`` next to this file (word<TAB>translation).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from lab.programs.common import parse_server_args, tcp_server_parser
from lab.programs.thread_server import run_threaded
from lab.programs.wrap import tcp_listener

DEFAULT_PORT = 8080
# Found next to the module, so copying the lab/ directory to a host is enough.
DATA_FILE = Path(__file__).with_name("dictionary.tsv")


def load_dictionary(path: Path = DATA_FILE) -> dict[str, str]:
    """word -> translation; blank lines and lines starting with '#' are skipped."""
    table: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        word, sep, translation = raw.partition("\t")
        if not sep or not word.strip() or not translation.strip():
            raise ValueError(f"{path}:{number}: expected word<TAB>translation")
        table[word.strip()] = translation.strip()
    return table


class Translator:
    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = table

    def __call__(self, line: bytes) -> bytes:
        raw = line.rstrip(b"\r\n")
        try:
            word = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return raw + b"\n"  # not text: comes back unchanged, like an unknown word
        found = self.table.get(word) or self.table.get(word.lower())
        return (found if found is not None else word).encode("utf-8") + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = tcp_server_parser(
        "python3 -m lab.programs.dict_server",
        "English->Chinese dictionary server: one word per line in, one line out.",
        DEFAULT_PORT,
    )
    args = parse_server_args(parser, argv)
    translator = Translator(load_dictionary())
    listener = tcp_listener(args.host, args.port, args.backlog, args.reuseaddr)
    return run_threaded(listener, args.backlog, translator)


if __name__ == "__main__":
    sys.exit(main())
