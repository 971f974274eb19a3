"""Builds the course's C and C++ programs (lab/programs/c/) with the real compilers, warnings
as errors, each from an argument list: the build lines of lab/programs/c/README.md."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.labcli import ROOT

C_DIR = ROOT / "lab" / "programs" / "c"
BUGS_DIR = C_DIR / "bugs"
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]
CXXFLAGS = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]


@dataclass(frozen=True)
class Program:
    """One executable: its main source, whether it is C++, and the library files it needs
    (serve.c for the servers; wrap.c for all)."""

    name: str
    main: str
    cxx: bool = False
    serve: bool = True
    bug: bool = False

    @property
    def output(self) -> str:
        return f"bug_{self.name}" if self.bug else self.name

    def argv(self, out_dir: Path) -> list[str]:
        where = BUGS_DIR if self.bug else C_DIR
        libs = (["serve.c"] if self.serve else []) + ["wrap.c"]
        lib_paths = [str(C_DIR / lib) for lib in libs]
        out = str(out_dir / self.output)
        include = [f"-I{C_DIR}"]
        if self.cxx:
            # The library files are written in the common subset of C and C++.
            return ["c++", *CXXFLAGS, *include, "-o", out, str(where / self.main), "-x", "c++",
                    *lib_paths]  # fmt: skip
        return ["cc", *CFLAGS, *include, "-o", out, str(where / self.main), *lib_paths]


PROGRAMS = [
    Program("fork_server", "fork_server.c"),
    Program("thread_server", "thread_server.c"),
    Program("iterative_server", "iterative_server.c"),
    Program("str_cli", "str_cli.c", serve=False),
    Program("udp_echo_server", "udp_echo_server.c"),
    Program("udp_echo_client", "udp_echo_client.c", serve=False),
    Program("dict_server", "dict_server.cpp", cxx=True),
]
BUGS = [
    Program("thread_server", "thread_server.c", bug=True),
    Program("dict_server", "dict_server.cpp", cxx=True, bug=True),
    Program("str_cli", "str_cli.c", serve=False, bug=True),
    Program("fork_server", "fork_server.c", bug=True),
]


class BuildError(Exception):
    pass


def compilers_present() -> bool:
    return shutil.which("cc") is not None and shutil.which("c++") is not None


def build_all(out_dir: Path) -> dict[str, Path]:
    """Every program and bug variant into ``out_dir`` (bug variants as ``bug_NAME``), with
    dictionary.tsv beside them; raises BuildError with the compiler's output on an error
    or any warning."""
    built: dict[str, Path] = {}
    for prog in [*PROGRAMS, *BUGS]:
        argv = prog.argv(out_dir)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or done.stderr.strip():
            raise BuildError(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr}")
        built[prog.output] = out_dir / prog.output
    shutil.copy(ROOT / "lab" / "programs" / "dictionary.tsv", out_dir / "dictionary.tsv")
    return built
