"""The node images: built once per set of inputs, with the package list's tools inside."""

from __future__ import annotations

import textwrap
from pathlib import Path

import docker
import pytest

from lab.deploy.apt import AptSource, host_apt_source
from lab.deploy.image_inputs import (
    ImageBuildError,
    node_hash,
    package_files,
    packages,
    program_files,
)
from lab.deploy.images import _prune, build_images, node_image, report_image
from tests.docker.conftest import TEST_LABEL


def run_in(client: docker.DockerClient, image: str, argv: list[str]) -> str:
    """Output of a throwaway container with no network (removed by the engine fixture)."""
    out: bytes = client.containers.run(
        image, argv, network_mode="none", labels={TEST_LABEL: "1"}, remove=True
    )
    return out.decode()


def test_second_build_does_no_work(engine: docker.DockerClient) -> None:
    before = node_image()
    assert before is not None
    image_ids = {i.id for i in engine.images.list(filters={"label": "socket-lab.image"})}
    lines: list[str] = []
    ref = build_images(offline=None, progress=lines.append)
    assert ref == before == f"socket-lab-node:{node_hash()}"
    after = {i.id for i in engine.images.list(filters={"label": "socket-lab.image"})}
    assert after == image_ids  # nothing built, imported or pulled
    assert not [line for line in lines if line.startswith(("building", "debootstrap", "pulling"))]
    assert engine.images.get(ref).id == engine.images.get("socket-lab-node:latest").id


def test_base_holds_every_listed_package_and_no_docs(engine: docker.DockerClient) -> None:
    ref = node_image()
    assert ref is not None
    base = engine.images.get(engine.images.get(ref).labels["socket-lab.base-id"])
    # Here (no registry) the offline path made it; elsewhere the Dockerfile may have.
    assert base.id is not None
    assert base.labels["socket-lab.image"] == "base"
    assert base.labels["socket-lab.base"] in {"offline", "ordinary"}
    script = textwrap.dedent(
        """
        for p in "$@"; do
          echo "$p $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)"
        done
        echo "docs $(ls /usr/share/doc | wc -l) lists $(ls /var/lib/apt/lists | wc -l)"
        """
    )
    out = run_in(engine, base.id, ["sh", "-c", script, "sh", *packages()])
    for package in packages():
        assert f"{package} install ok installed" in out, out
    assert "docs 0 lists 0" in out


def test_node_image_runs_the_lab_programs(engine: docker.DockerClient) -> None:
    ref = node_image()
    assert ref is not None
    script = textwrap.dedent(
        """
        import os, sys, lab
        root = os.path.dirname(lab.__file__)
        files = sorted(
            os.path.relpath(os.path.join(d, f), root)
            for d, _, fs in os.walk(root) for f in fs
            if "__pycache__" not in d
        )
        print(sys.version_info[:2] >= (3, 11), root)
        print(*files)
        """
    )
    first, second = run_in(engine, ref, ["python3", "-c", script]).splitlines()
    assert first == "True /opt/socket-lab/lab"
    assert sorted(second.split()) == sorted(str(p) for p in program_files())
    for tool in ("ip", "netstat", "ss", "ps", "tcpdump", "timeout"):
        assert run_in(engine, ref, ["sh", "-c", 'command -v "$1"', "sh", tool]).strip()


def test_report_image_judges_with_the_whole_lab(engine: docker.DockerClient) -> None:
    """Compose's report service runs `lab report` in this image: the node image, the whole
    package and its two libraries."""
    ref, node = report_image(), node_image()
    assert ref is not None and node is not None
    assert engine.images.get(ref).labels["socket-lab.base-id"] == engine.images.get(node).id
    script = "import os, yaml, dpkt, lab.cli, lab.report.page\n"
    script += "print(len(os.listdir(*lab.__path__)))"
    out = run_in(engine, ref, ["python3", "-c", script]).strip()
    assert int(out) == len({p.parts[0] for p in package_files()}) + 1  # and __pycache__
    usage = run_in(engine, ref, ["python3", "-m", "lab.cli", "report", "--help"])
    assert "usage: lab report" in usage


def test_host_apt_source_reads_deb822_and_one_line_files(tmp_path: Path) -> None:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d" / "a-off.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    (apt / "sources.list.d" / "debian.sources").write_text(
        textwrap.dedent(
            """
            Types: deb-src
            URIs: http://src.example/debian
            Suites: bookworm

            Types: deb
            # a comment
            URIs: http://mirror.example/debian/
            Suites: bookworm-updates
             bookworm
            Components: main
            """
        )
    )
    (apt / "sources.list.d" / "other.list.disabled").write_text(
        "deb http://disabled.example/debian bookworm main\n"
    )
    release = tmp_path / "os-release"
    release.write_text('ID=debian\nVERSION_CODENAME="bookworm"\n')
    assert host_apt_source(apt, release) == AptSource("http://mirror.example/debian", "bookworm")

    (apt / "sources.list.d" / "debian.sources").unlink()
    (apt / "sources.list").write_text(
        "# the host\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example/debian trixie main\n"
    )
    release.write_text("VERSION_CODENAME=trixie\n")
    assert host_apt_source(apt, release) == AptSource("http://one.example/debian", "trixie")

    (apt / "sources.list").unlink()
    with pytest.raises(ImageBuildError, match="no Debian mirror"):
        host_apt_source(apt, release)


def test_package_list_ignores_comments(tmp_path: Path) -> None:
    (tmp_path / "packages.txt").write_text("# tools\npython3  # the lab's programs\n\n iproute2\n")
    assert packages(tmp_path) == ["python3", "iproute2"]


class _Image:
    def __init__(self, digest: str, created: str) -> None:
        self.labels = {"socket-lab.image": "node", "socket-lab.hash": digest}
        self.attrs = {"Created": created}
        self.tags = [f"socket-lab-node:{digest}"]


class _Images:
    def __init__(self, images: list[_Image]) -> None:
        self.images = images
        self.removed: list[str] = []

    def list(self, filters: dict[str, list[str]]) -> list[_Image]:
        assert filters == {"label": ["socket-lab.image=node"]}
        return self.images

    def remove(self, tag: str) -> None:
        self.removed.append(tag)


class _Client:
    def __init__(self, images: list[_Image]) -> None:
        self.images = _Images(images)


def test_a_build_keeps_the_newest_images_of_other_inputs() -> None:
    # Two checkouts on one machine must not keep removing each other's images.
    dates = [f"2026-01-0{d}T00:00:00Z" for d in range(1, 7)]
    images = [_Image(f"h{n}", day) for n, day in enumerate(dates)]
    client = _Client(images)
    said: list[str] = []
    _prune(client, "node", "socket-lab-node", keep="h0", progress=said.append)  # type: ignore[arg-type]
    # h0 is current; of h1..h5 the three newest (h5, h4, h3) stay.
    assert client.images.removed == ["socket-lab-node:h2", "socket-lab-node:h1"]
    assert said == [f"removed superseded {t}" for t in client.images.removed]
