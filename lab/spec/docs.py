"""The key tables of ``topologies/README.md``, generated from ``lab.spec.keys``.

    python3 -m lab.spec.docs            # print every table
    python3 -m lab.spec.docs --write    # rewrite the tables in topologies/README.md

In the README each table sits between ``<!-- generated: TITLE -->`` and
``<!-- end generated -->``; the prose around them is the README's own.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from functools import partial

from lab.data import TOPOLOGIES_DIR
from lab.spec.claims import CLAIM_SPECS
from lab.spec.keys import DEFAULT_PORTS, OPTIONS, SECTIONS, Key, Section
from lab.spec.model import SERVER_PROGRAMS, SERVICE_OPTIONS

README = TOPOLOGIES_DIR / "README.md"
_BLOCK = re.compile(r"(<!-- generated: (.+?) -->\n)(.*?)(<!-- end generated -->)", re.DOTALL)
_KIND_DOC = {
    "name": "name",
    "text": "text",
    "boolean": "`true`/`false`",
    "address": "IPv4 address",
    "subnet": "IPv4 CIDR",
    "mapping": "mapping",
    "list": "list",
}


def _type(key: Key) -> str:
    if key.type_doc:
        return key.type_doc
    if key.kind in ("integer", "number") and key.bounds is not None:
        return f"{key.kind} {key.bounds[0]}..{key.bounds[1]}"
    if key.kind == "choice":
        shown = [f"`{c}`" for c in key.choices]
        return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return _KIND_DOC[key.kind]


def _default(key: Key) -> str:
    if key.default is None or key.default == "":
        return ""
    if isinstance(key.default, bool):
        return "`true`" if key.default else "`false`"
    return f"`{key.default}`"


def key_table(section: Section) -> str:
    lines = ["| key | required | type | default | meaning |", "|---|---|---|---|---|"]
    for key in section.keys:
        required = key.required_when or ("yes" if key.required else "no")
        row = (f"`{key.name}`", required, _type(key), _default(key), key.help)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def programs_table() -> str:
    lines = ["| program | protocol | default port | options |", "|---|---|---|---|"]
    for program, protocol in SERVER_PROGRAMS.items():
        options = ", ".join(f"`{o}`" for o in SERVICE_OPTIONS[program]) or "none"
        lines.append(f"| `{program}` | {protocol} | {DEFAULT_PORTS[program]} | {options} |")
    return "\n".join(lines) + "\n"


def options_table() -> str:
    lines = ["| option | type | meaning |", "|---|---|---|"]
    for key in OPTIONS.keys:
        lines.append(f"| `{key.name}` | {_type(key)} | {key.help} |")
    return "\n".join(lines) + "\n"


def claims_table() -> str:
    lines = ["| claim | protocol | holds when |", "|---|---|---|"]
    for name, spec in CLAIM_SPECS.items():
        lines.append(f"| `{name}` | {spec.protocol} | {spec.holds_when} |")
    return "\n".join(lines) + "\n"


def tables() -> Mapping[str, Callable[[], str]]:
    """Every generated table, by the title its README markers give."""
    out: dict[str, Callable[[], str]] = {
        title: partial(key_table, section) for title, section in SECTIONS.items()
    }
    out["programs"] = programs_table
    out["options"] = options_table
    out["claims"] = claims_table
    return out


def render(text: str) -> str:
    """``text`` with every marked table regenerated; an unknown title is an error."""
    known = tables()

    def fill(match: re.Match[str]) -> str:
        title = match.group(2)
        if title not in known:
            raise KeyError(f"no generated table is called {title!r}")
        return match.group(1) + known[title]() + match.group(4)

    return _BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The README's key tables, from lab.spec.keys.")
    parser.add_argument("--write", action="store_true", help=f"rewrite {README}")
    args = parser.parse_args(argv)
    if args.write:
        README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    for title, table in tables().items():
        print(f"<!-- generated: {title} -->\n{table()}<!-- end generated -->\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
