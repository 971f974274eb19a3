"""Fixtures of the compose tests that run node programs between namespaces."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest


@pytest.fixture
def two_namespaces(root: None) -> Iterator[tuple[str, str]]:
    """Namespaces ``a`` (10.99.7.1) and ``b`` (10.99.7.2) joined by a veth pair."""
    tag = secrets.token_hex(3)
    a, b = f"svt-{tag}-a", f"svt-{tag}-b"

    def run(*argv: str) -> None:
        subprocess.run([*argv], check=True, capture_output=True)

    try:
        run("ip", "netns", "add", a)
        run("ip", "netns", "add", b)
        run("ip", "link", "add", f"svt{tag}a", "netns", a, "type", "veth",
            "peer", "name", f"svt{tag}b", "netns", b)  # fmt: skip
        for ns, dev, addr in ((a, f"svt{tag}a", "10.99.7.1"), (b, f"svt{tag}b", "10.99.7.2")):
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
