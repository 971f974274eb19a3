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

SIGPIPE goes back to its default (Python ignores it, and an ignored signal stays ignored
across exec): a C program that writes to a closed socket must die of it as it would when
started from a shell. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import pwd
import resource
import signal
import sys


def user_ids(user: str) -> tuple[int, int]:
    """A user's name, or a number: a uid of its own, in no account, whose processes are
    counted apart from everyone's (``RLIMIT_NPROC``), its group the same number."""
    if user.isdigit():
        return int(user), int(user)
    who = pwd.getpwnam(user)
    return who.pw_uid, who.pw_gid


def limit(which: int, value: int) -> None:
    if value > 0:
        resource.setrlimit(which, (value, value))


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
        os.execvp(command[0], command)  # noqa: S606 - an argument list, as the lab runs everything
    except (OSError, KeyError) as exc:
        print(f"userprog: cannot start {command[0]!r} in {args.dir}: {exc}", file=sys.stderr)
        return 127
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main())
