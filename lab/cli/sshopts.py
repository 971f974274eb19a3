"""The ssh backend's host-key options, the same for ``lab run`` and ``lab grade``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lab.errors import UsageError


def add_host_key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--known-hosts",
        metavar="FILE",
        help="ssh: the known_hosts file host keys are checked against (default ~/.ssh/known_hosts)",
    )
    p.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="ssh: record the key of a host not yet known (a changed key is still refused)",
    )


def with_host_keys(args: argparse.Namespace, cls: Any) -> Any:
    """The ssh backend configured with the host-key options; other backends as they are
    (given the options, refused: they apply to ssh alone)."""
    # By name first: importing the ssh backend (paramiko) costs a third of a second.
    if getattr(cls, "name", None) == "ssh":
        from lab.run.backends.ssh.backend import SshBackend

        if isinstance(cls, type) and issubclass(cls, SshBackend):
            known = Path(args.known_hosts) if args.known_hosts else None
            return cls.configured(known_hosts=known, accept_new=args.accept_new_host_keys)
    if args.accept_new_host_keys or args.known_hosts:
        raise UsageError("--accept-new-host-keys and --known-hosts apply to --backend ssh")
    return cls
