"""Shared fixtures. Capability fixtures skip on a laptop that lacks the capability, and
fail under CI=true, where root, namespaces and Docker are all present by design."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (or, in CI, fail) the calling test unless ``condition`` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def root() -> None:
    """The test needs root, iproute2 and tcpdump (network namespaces and captures)."""
    require(os.geteuid() == 0, "needs root for network namespaces")
    for tool in ("ip", "tcpdump", "ss", "netstat"):
        require(shutil.which(tool) is not None, f"needs {tool} on PATH (run .ci/setup)")


@pytest.fixture
def docker_engine() -> None:
    """The test needs a reachable Docker engine and the lab's node image, up to date."""
    from lab.backends.docker import DockerBackend

    reason = DockerBackend.available()
    require(reason is None, reason or "")


# Tests are put in their tier by the capability fixtures they use, so that `-m netns`
# and `-m docker` select every test that needs root or the engine, marked or not.
TIER_OF_FIXTURE = {"root": "netns", "docker_engine": "docker"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, tier in TIER_OF_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, tier))
