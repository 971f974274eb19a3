"""Start a user's program in its build folder, unprivileged and bounded, then become it.

    python3 -m lab.programs.userprog --dir BUILD [--user nobody] [limits] -- ARGV...

The lab runs students' programs with this: it sets the limits, drops root for ``--user``,
changes to ``--dir`` and exec()s ARGV, so the process the lab records (its PID, its
children, its threads) is the program itself. The limits:

- ``--nproc``: ``RLIMIT_NPROC``. The kernel counts it per user and does not apply it to
  root, which is one reason the program runs as an unprivileged user.
- ``--as``: ``RLIMIT_AS``, the address space in bytes.
- ``--fsize``: ``RLIMIT_FSIZE``, the largest file it may write, its log (stdout and stderr)
  included. Past it a write fails with EFBIG instead of raising SIGXFSZ, which is left
  ignored, so a chatty program goes on running with its log cut.

The program gets an environment of its own, not the lab's: ``PATH`` (where its compiler
and interpreter are found), ``PYTHONPATH`` (where a Python program finds the lab's
modules), ``HOME`` (its build folder), ``LC_ALL=C.UTF-8`` and the run's ``SOCKET_LAB_*``
markers (the ssh backend finds a run's processes by them), nothing else.
The operator's variables (tokens, sockets, a CI's settings) are not an untrusted program's
business, and their size would move the program's stack: a stack overflow that crashes
under one environment can go unnoticed under a larger one.

SIGPIPE goes back to its default (Python ignores it, and an ignored signal stays ignored
across exec): a C program that writes to a closed socket must die of it as it would when
started from a shell. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import resource
import signal
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

# The bounds of a user's program, wherever the lab builds and runs it (``lab run`` on every
# backend, and the compose lab's nodes).
RUN_USER = "nobody"  # a compose lab's; lab run gives each run a uid of its own
# Processes (and threads) of the run user, RLIMIT_NPROC. The kernel counts them per uid
# across the host: every user program of one run shares this (of every compose lab at
# once, as nobody), and the correct thread server of bug-thread-table alone needs 301 for
# its 300 connections.
NPROC = 1024
ADDRESS_SPACE = 4 << 30  # bytes, RLIMIT_AS (a thread's stack counts: 8 MiB each)
LOG_CAP = 4 << 20  # bytes of output a user program may write, RLIMIT_FSIZE
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a user's server
BUILD_TIMEOUT = 300.0  # seconds one build may take
MAX_BUILD_LOG = 1 << 20  # bytes of compiler output kept
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"  # when the lab itself was started without one


def user_ids(user: str) -> tuple[int, int]:
    """A user's name, or a number: a uid of its own, in no account, whose processes are
    counted apart from everyone's (``RLIMIT_NPROC``), its group the same number."""
    if user.isdigit():
        return int(user), int(user)
    who = pwd.getpwnam(user)
    return who.pw_uid, who.pw_gid


def program_env(inherited: Mapping[str, str], folder: str) -> dict[str, str]:
    """The whole environment a user's program (or its build) starts with."""
    env = {k: v for k, v in inherited.items() if k.startswith("SOCKET_LAB_")}
    env["PATH"] = inherited.get("PATH") or DEFAULT_PATH
    if inherited.get("PYTHONPATH"):  # where a Python program finds the lab's own modules
        env["PYTHONPATH"] = inherited["PYTHONPATH"]
    env["HOME"] = folder
    env["LC_ALL"] = "C.UTF-8"
    return env


def limit(which: int, value: int) -> None:
    if value > 0:
        resource.setrlimit(which, (value, value))


def bounded(python: str, folder: str, argv: Sequence[str], user: str = RUN_USER) -> list[str]:
    """The argument list that starts a built program in ``folder``: bounded, as ``user``
    (a name or a uid; ``lab run`` gives each run a uid of its own, lab.run.runuid)."""
    return [
        python, "-m", "lab.programs.userprog", "--dir", folder, "--user", user,
        "--nproc", str(NPROC), "--as", str(ADDRESS_SPACE), "--fsize", str(LOG_CAP),
        "--", *argv,
    ]  # fmt: skip


def shown_as(output: str, names: Iterable[tuple[str, str]]) -> str:
    """Compiler output with the build folder's file names put back as the topology wrote
    them: ``names`` pairs each copied name with its written path (``server.c:5:3:`` ->
    ``student/server.c:5:3:``)."""
    for name, written in names:
        if written == name:
            continue
        pattern = re.compile(r"(?<![\w./-])" + re.escape(name) + r"(?=[:/])")
        shown = written.rstrip("/").replace("\\", "\\\\")
        output = pattern.sub(shown, output)
    return output


def open_to_all(folder: Path) -> None:
    """Let the unprivileged run user read a build folder and run what is executable."""
    for dirpath, _dirs, files in os.walk(folder):
        os.chmod(dirpath, 0o755)  # noqa: S103 - the run user reads the program
        for f in files:
            path = Path(dirpath) / f
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                extra = 0o111 if mode & stat.S_IXUSR else 0
                os.chmod(path, (mode & 0o7777) | 0o444 | extra)
    for parent in (folder.parent, folder.parent.parent):
        mode = parent.stat().st_mode & 0o7777
        os.chmod(parent, mode | 0o111)  # noqa: S103 - traverse only: the folder is not listed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", required=True, help="the build folder to run in")
    parser.add_argument(
        "--user", default="", help="run as this user, or this uid (when started as root)"
    )
    parser.add_argument("--nproc", type=int, default=0, help="RLIMIT_NPROC; 0: unchanged")
    parser.add_argument("--as", dest="address_space", type=int, default=0, help="RLIMIT_AS")
    parser.add_argument("--fsize", type=int, default=0, help="RLIMIT_FSIZE in bytes")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- ARGV...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after --")
    try:
        os.chdir(args.dir)
        if args.user and os.geteuid() == 0:
            uid, gid = user_ids(args.user)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        limit(resource.RLIMIT_NPROC, args.nproc)
        limit(resource.RLIMIT_AS, args.address_space)
        limit(resource.RLIMIT_FSIZE, args.fsize)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        env = program_env(os.environ, os.getcwd())
        os.execvpe(command[0], command, env)  # noqa: S606 - an argument list, as the lab runs everything
    except (OSError, KeyError) as exc:
        print(f"userprog: cannot start {command[0]!r} in {args.dir}: {exc}", file=sys.stderr)
        return 127
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main())
