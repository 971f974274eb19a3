"""Reading ``programs``: the user's own programs, their sources, build and run commands.

Sources are checked here (they exist and can be read), so that ``lab validate`` names a
missing file at its line. Any path the user running the lab can read is accepted, outside
the topology's folder too: the lab copies the files, it never writes to them. A source
written ``lab:PATH`` is one of the lab's own shipped files, under ``lab/programs/`` of the
installed package (``lab:c/fork_server.c``), so that a topology copied anywhere (``lab
init``) still finds the course's C programs. The default
build and run commands are chosen from the sources' names (``lab.spec.keys.PROGRAM``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lab.spec.drafts import Doc
from lab.spec.keys import NAME_RULE, PROGRAM
from lab.spec.model import PLACEHOLDERS, UserProgram
from lab.spec.rules import is_valid_name
from lab.spec.yamlread import Entry, KeyPath, Reader, line_of

C_SUFFIXES = (".c",)
CXX_SUFFIXES = (".cpp", ".cc", ".cxx")
WARNINGS = ("-Wall", "-Wextra", "-O2", "-pthread")
_BRACES = re.compile(r"\{[^{}]*\}")
# ``lab:PATH`` names a file the lab ships: lab/programs/ of this package.
SHIPPED_PREFIX = "lab:"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "programs"


def read_programs(r: Reader, e: Entry, doc: Doc) -> None:
    entries = r.entries(e.value, ("programs",), "a mapping of program names to {sources: ...}")
    for pe in entries or ():
        path: KeyPath = ("programs", pe.key)
        doc.programs[pe.key] = None
        doc.program_lines[pe.key] = pe.line
        if not is_valid_name(pe.key):
            r.p.add(pe.line, path, f"bad program name {pe.key!r}: {NAME_RULE}")
            continue
        spec = r.fields(pe.value, path, pe.line, PROGRAM)
        if spec is None or "sources" not in spec:
            continue
        doc.programs[pe.key] = _read_program(r, pe.key, spec, path, doc)


def _read_program(
    r: Reader, name: str, spec: dict[str, Entry], path: KeyPath, doc: Doc
) -> UserProgram | None:
    count = len(r.p.items)
    written: list[str] = []
    sources = _read_sources(r, spec["sources"], (*path, "sources"), doc, written)
    build = (
        _words(r, spec["build"], (*path, "build"), placeholders=False) if "build" in spec else None
    )
    run = _words(r, spec["run"], (*path, "run"), placeholders=True) if "run" in spec else None
    protocol = "tcp"
    if "protocol" in spec:
        got = r.value(PROGRAM["protocol"], spec["protocol"].value, (*path, "protocol"))
        protocol = got if isinstance(got, str) else protocol
    model = "udp" if protocol == "udp" else "other"
    if "model" in spec:
        m = spec["model"]
        got = r.value(PROGRAM["model"], m.value, (*path, "model"))
        if isinstance(got, str):
            model = got
            if (got == "udp") != (protocol == "udp"):
                r.p.add(
                    line_of(m.value),
                    (*path, "model"),
                    f"model '{got}' does not go with protocol '{protocol}': "
                    + ("a UDP program's model is 'udp'" if protocol == "udp"
                       else "'udp' is the model of a UDP program"),
                )  # fmt: skip
    if len(r.p.items) > count or sources is None:
        return None
    default_build, default_run = default_commands(name, sources, known=doc.check_sources)
    if run is None and default_run is None:
        r.p.add(
            spec["sources"].line,
            (*path, "sources"),
            "cannot tell how to run these sources (not C, C++, one .py file or one executable "
            "file): give 'run' (and 'build')",
        )
        return None
    return UserProgram(
        name=name,
        sources=tuple(sources),
        build=tuple(build if build is not None else default_build),
        run=tuple(run if run is not None else (default_run or ())),
        protocol=protocol,
        model=model,
        run_given=run is not None,
        written=tuple(written),
    )


def _read_sources(
    r: Reader, e: Entry, path: KeyPath, doc: Doc, written: list[str]
) -> list[Path] | None:
    items = r.items(e.value, path)
    if items is None:
        return None
    if not items:
        r.p.add(e.line, path, "needs at least one source file or folder")
        return None
    out: list[Path] = []
    names: dict[str, int] = {}
    ok = True
    for j, item in enumerate(items):
        text = r.text(item, (*path, j))
        if text is None:
            ok = False
            continue
        problem, where = _source_problem(text, doc.base_dir, doc.check_sources)
        if problem is None and where.name in names:
            first = render_index(path, names[where.name])
            problem = (
                f"another source is also named '{where.name}' ({first}); sources are copied "
                "under their own names"
            )
        if problem is not None:
            r.p.add(line_of(item), (*path, j), problem)
            ok = False
            continue
        names[where.name] = j
        out.append(where)
        written.append(text)
    return out if ok else None


def render_index(path: KeyPath, index: int) -> str:
    return f"{path[-1]}[{index}]"


def _source_problem(text: str, base: Path, look: bool) -> tuple[str | None, Path]:
    if not text.strip():
        return "an empty file name", base
    if text.startswith(SHIPPED_PREFIX):
        return _shipped_problem(text[len(SHIPPED_PREFIX) :], look)
    given = Path(text).expanduser()
    where = given if given.is_absolute() else base / given
    where = Path(os.path.abspath(where))
    if where.name in ("", ".", ".."):
        return f"'{text}' names no file or folder of its own", where
    if not look:
        return None, where
    if not where.exists():
        return "no such file", where
    if not os.access(where, os.R_OK) or (where.is_dir() and not os.access(where, os.X_OK)):
        return "cannot be read by this user", where
    if not (where.is_file() or where.is_dir()):
        return "not a regular file or folder", where
    return None, where


def _shipped_problem(rest: str, look: bool) -> tuple[str | None, Path]:
    """``lab:PATH``: a path inside the lab's shipped programs, never outside them."""
    where = Path(os.path.abspath(SHIPPED_DIR / rest))
    if not rest or Path(rest).is_absolute() or not where.is_relative_to(SHIPPED_DIR):
        return (
            f"'{SHIPPED_PREFIX}{rest}' must name a file or folder inside the lab's programs "
            f"({SHIPPED_DIR}), e.g. '{SHIPPED_PREFIX}c/fork_server.c'"
        ), where
    if where == SHIPPED_DIR:
        return f"'{SHIPPED_PREFIX}{rest}' names no file or folder of its own", where
    if look and not where.exists():
        return f"no such file among the lab's programs ({where})", where
    return None, where


def _words(r: Reader, e: Entry, path: KeyPath, *, placeholders: bool) -> list[str] | None:
    items = r.items(e.value, path)
    if items is None:
        return None
    if not items:
        r.p.add(e.line, path, "needs at least the program to run")
        return None
    out: list[str] = []
    ok = True
    for j, item in enumerate(items):
        text = r.text(item, (*path, j))
        if text is None:
            ok = False
            continue
        problem = _placeholder_problem(text, placeholders)
        if problem:
            r.p.add(line_of(item), (*path, j), problem)
            ok = False
        out.append(text)
    if ok and not out[0]:
        r.p.add(line_of(items[0]), (*path, 0), "an empty program name")
        ok = False
    return out if ok else None


def _placeholder_problem(word: str, allowed: bool) -> str | None:
    """Braces stand for placeholders: only ``{port}`` and ``{host}``, and only in ``run``."""
    found = _BRACES.findall(word)
    rest = _BRACES.sub("", word)
    if not allowed and (found or "{" in rest or "}" in rest):
        return f"'{word}': placeholders ({', '.join(PLACEHOLDERS)}) apply to 'run' only"
    unknown = [f for f in found if f not in PLACEHOLDERS]
    if unknown:
        return (
            f"unknown placeholder {unknown[0]} in '{word}'; placeholders: {', '.join(PLACEHOLDERS)}"
        )
    if "{" in rest or "}" in rest:
        return f"an unmatched brace in '{word}'; placeholders: {', '.join(PLACEHOLDERS)}"
    return None


def source_files(sources: list[Path]) -> list[tuple[Path, str]]:
    """Every file of the sources (folders walked, sorted), with its path in the build folder."""
    out: list[tuple[Path, str]] = []
    for src in sources:
        if src.is_dir():
            for dirpath, dirnames, filenames in os.walk(src):
                dirnames.sort()
                for f in sorted(filenames):
                    full = Path(dirpath) / f
                    out.append((full, str(Path(src.name) / full.relative_to(src))))
        else:
            out.append((src, src.name))
    return out


def default_commands(
    name: str, sources: list[Path], *, known: bool = True
) -> tuple[list[str], list[str] | None]:
    """The build and run argument lists the sources' names suggest; run None: no default.
    With ``known`` False the files are not looked at: a lone file is taken as executable."""
    files = source_files(sources)
    cxx = [rel for full, rel in files if full.suffix in CXX_SUFFIXES]
    c = [rel for full, rel in files if full.suffix in C_SUFFIXES]
    if cxx or c:
        compiler = "c++" if cxx else "cc"
        units = [rel for full, rel in files if full.suffix in (*C_SUFFIXES, *CXX_SUFFIXES)]
        return [compiler, *WARNINGS, "-o", name, *units], [f"./{name}"]
    scripts = [rel for full, rel in files if full.suffix == ".py"]
    if len(scripts) == 1:  # one script, with its data files (a dictionary, say) beside it
        return [], ["python3", scripts[0]]
    if len(files) == 1:
        full, rel = files[0]
        if not known or os.access(full, os.X_OK):
            return [], [f"./{rel}"]
    return [], None
