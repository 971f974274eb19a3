"""Shared fixtures. Capability fixtures skip on a laptop that lacks the capability, and
fail under CI=true, where root, namespaces and Docker are all present by design."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.leftovers import processes_from_tests

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The suite asserts English texts: a developer's own language must not choose the lab's
# (LC_ALL, LC_MESSAGES, LANG) or the tools' (LANGUAGE). A test that wants another
# language says so in the environment it gives the command.
for _var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_var, None)
os.environ["LANG"] = "C.UTF-8"


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


NO_NETEM_KERNEL = "the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)"


def netem_in_kernel() -> bool:
    """Whether a netem qdisc can be made, tried in a throwaway namespace of the test's own
    (``slabtest-``: not the lab's, so never counted as its leftovers)."""
    import secrets
    import subprocess

    ns = f"slabtest-netem-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        argv = ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root",
                "netem", "delay", "1ms"]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
    if done.returncode != 0 and "unknown" not in done.stderr.lower():
        pytest.fail(f"probing for netem: {' '.join(argv)}: {done.stderr.strip()}")
    return done.returncode == 0


@pytest.fixture
def netem_kernel(root: None) -> None:
    """The test needs the kernel's netem qdisc. Unlike root or Docker, no set-up can give
    a running kernel a qdisc it was built without (and the kernel is the host's, shared
    with Docker): so the test skips, in CI too, with that reason, found by a real probe."""
    if not netem_in_kernel():
        pytest.skip(NO_NETEM_KERNEL)


@pytest.fixture
def docker_engine() -> None:
    """The test needs a reachable Docker engine and the lab's node image, up to date."""
    from lab.run.backends.docker import DockerBackend

    reason = DockerBackend.available()
    require(reason is None, reason or "")


@pytest.fixture(scope="session")
def two_engines() -> Iterator[Any]:
    """A two-engine Docker Swarm for the whole session (tests/swarm/twoengines.py): the
    machine's engine its manager, a second engine in a namespace its worker; all of it
    removed afterwards, pass or fail. Defined here, once: the machine's engine can be in
    one swarm only, so every module that uses it must share this one."""
    from tests.swarm.twoengines import TwoEngines, needs

    require(needs() is None, needs() or "")
    swarm = TwoEngines()
    try:
        try:
            swarm.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            require(False, f"cannot make a two-engine swarm here: {exc}")
        yield swarm
    finally:
        problems = swarm.stop()
    assert problems == [], problems


@pytest.fixture(scope="session")
def swarm_backend(two_engines: Any, tmp_path_factory: pytest.TempPathFactory) -> type[Any]:
    """The swarm backend on both engines of the session's swarm."""
    from lab.run.backends.swarm import SwarmBackend, load_engines

    folder = tmp_path_factory.mktemp("swarm")
    return SwarmBackend.configured(load_engines(two_engines.engines_file(folder)))


# Tests are put in their tier by the capability fixtures they use, so that `-m netns`
# and `-m docker` select every test that needs root or the engine, marked or not.
TIER_OF_FIXTURE = {"root": "netns", "docker_engine": "docker", "two_engines": "swarm"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, tier in TIER_OF_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, tier))
        if item.get_closest_marker("swarm") is not None:
            # The swarm puts the machine's own engine in swarm mode for as long as it
            # lasts: the other Docker tests must not run on an engine changed under them.
            item.add_marker(pytest.mark.exclusive)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Spread the suite over workers (`pytest -n 3`, as .ci/test does) in the groups of
    ``worker_group``: each group runs whole on one worker."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return GroupScheduling(config, log)


# Folders whose files share costly session fixtures (every experiment run on a backend,
# the report's lab runs, the C programs built once) or one machine-wide resource (the
# compose projects): each is one group, so that a fixture is made once.
SHARED_FOLDERS = frozenset({"experiments", "report", "programs", "compose"})


def worker_group(nodeid: str) -> str:
    """The group of a test, by its id: the ssh tier's hosts are one set per machine (their
    management network is fixed), so every test that uses them (its file or its parameter
    says ssh) is in one group; so is the swarm tier's (the machine's engine can be in one
    swarm at a time, made once per worker); Docker's experiments are a group of their own; a shared
    folder is one group; any other file is one group, which keeps its module fixtures to
    one worker."""
    path, _, name = nodeid.partition("::")
    parts = Path(path).parts
    folder = parts[1] if len(parts) > 2 else ""
    if "ssh" in (folder, *Path(path).stem.split("_")) or "[ssh" in name or "-ssh]" in name:
        return "ssh"
    if folder == "swarm" or "[swarm" in name or "-swarm]" in name:
        return "swarm"
    if folder == "experiments" and "[docker-" in name:
        return "experiments-docker"
    return folder if folder in SHARED_FOLDERS else path


@pytest.fixture(autouse=True)
def _results_have_their_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every results folder a test makes under its tmp_path is checked, after the test,
    against the JSON Schemas of run.json and summary.json that ship in the package. A test
    that writes a deliberately broken record says so with ``@pytest.mark.broken_results``."""
    wanted = "tmp_path" in request.fixturenames
    if not wanted or request.node.get_closest_marker("broken_results"):
        yield
        return
    # Taken before the test: a fixture's value is gone once the test's fixtures tear down.
    tmp: Path = request.getfixturevalue("tmp_path")
    yield
    from tests.results_schema import assert_valid_results

    for run_file in sorted(tmp.rglob("run.json")):
        if run_file.parent.name != "recording":  # a recording's copy, not a results folder
            assert_valid_results(run_file.parent)


def lab_leftovers() -> list[str]:
    """Everything on this machine that the lab owns: namespaces and links with its prefix,
    labelled containers and networks, image-build folders, and the processes the tests
    started, through the lab or not. Empty after a clean suite."""
    import glob
    import re
    import subprocess

    found: list[str] = []
    if shutil.which("ip"):
        ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        found += [f"netns {n.split()[0]}" for n in ns.splitlines() if re.match(r"slab-", n)]
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        found += [f"link {m}" for m in re.findall(r"^\d+: (slab[0-9a-f]{6}[bv]\d+)", links, re.M)]
    found += [f"build dir {d}" for d in glob.glob("/var/tmp/socket-lab-build-*")]
    found += processes_from_tests()
    try:
        import docker

        client = docker.from_env()
        try:
            label: dict[str, str | list[str] | bool] = {"label": "socket-lab.run"}
            containers = client.containers.list(all=True, filters=label)
            found += [f"container {c.name}" for c in containers]
            found += [f"network {n.name}" for n in client.networks.list(filters=label)]
        finally:
            client.close()
    except Exception:  # no engine: nothing of ours can be in it
        pass
    return found


_BEFORE_SESSION: set[str] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    _BEFORE_SESSION.update(lab_leftovers())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a whole run that leaves anything of the lab's behind (a teardown bug). What was
    there before the session started is not this run's doing and is not counted."""
    if getattr(session.config, "workerinput", None) is not None or session.testscollected == 0:
        return
    if all(item.get_closest_marker("vm") for item in session.items):
        # The netem guest's labs live in the guest's own kernel and go with it; .ci/test
        # runs such a session beside another one, whose labs are not this session's.
        return
    left = [item for item in lab_leftovers() if item not in _BEFORE_SESSION]
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        # A process signalled by a test's last teardown may still be on its way out.
        time.sleep(0.5)
        left = [item for item in lab_leftovers() if item not in _BEFORE_SESSION]
    if left:
        print("\nleft behind by the test suite:\n  " + "\n  ".join(left))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
