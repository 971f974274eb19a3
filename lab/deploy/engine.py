"""The Docker engine as the image build uses it: the client, finding images by label,
``docker build``, and scratch folders that are removed whatever happens."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from lab.deploy.image_inputs import (
    BASE_REPO,
    HASH_LABEL,
    IMAGE_LABEL,
    NODE_REPO,
    REPORT_REPO,
    ImageBuildError,
    Progress,
)

BUILD_ROOT = Path("/var/tmp")


def connect() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ImageBuildError(f"Docker engine not reachable at {where}: {exc}") from exc
    return client


def image_id(client: docker.DockerClient, ref: str) -> str | None:
    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    return str(image.id)


def labelled(client: docker.DockerClient, kind: str, digest: str) -> str | None:
    """The reference of an image with our kind and hash labels, if one exists."""
    repo = {"node": NODE_REPO, "report": REPORT_REPO}.get(kind, BASE_REPO)
    # Both labels in the engine's filter, and its list as it is: the SDK's images.list()
    # inspects every image it lists again, one request each.
    match = [f"{IMAGE_LABEL}={kind}", f"{HASH_LABEL}={digest}"]
    for image in client.api.images(filters={"label": match}):
        tags = [t for t in image.get("RepoTags") or [] if t.startswith(repo + ":")]
        return tags[0] if tags else str(image["Id"])
    return None


def docker_build(
    client: docker.DockerClient,
    context: Path,
    dockerfile: str,
    tag: str,
    labels: dict[str, str],
    buildargs: dict[str, str],
    progress: Progress,
) -> str:
    """``docker build`` through the engine API; step lines go to ``progress``."""
    try:
        stream = client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            labels=labels,
            buildargs=buildargs,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError(f"building {tag}: {str(chunk['error']).strip()}")
            line = str(chunk.get("stream", "")).strip()
            if line.startswith("Step "):
                progress(f"  {line}")
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ImageBuildError(f"building {tag}: {exc}") from exc
    built = image_id(client, tag)
    if built is None:
        raise ImageBuildError(f"building {tag}: the engine reported no image")
    return built


@contextmanager
def build_dir() -> Iterator[Path]:
    """A scratch directory under /var/tmp, removed whatever happens (Ctrl-C included)."""
    path = Path(tempfile.mkdtemp(prefix="socket-lab-build-", dir=BUILD_ROOT))
    try:
        yield path
    finally:
        _remove_tree(path)


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (debootstrap mounts /proc and /sys in its target)."""
    prefix = str(path).rstrip("/") + "/"
    found = []
    with suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == str(path) or point.startswith(prefix):
                found.append(point)
    return found


def _remove_tree(path: Path) -> None:
    # Unmount first, deepest first: rmtree would otherwise descend into a bound /proc or /dev.
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    left = _mounts_under(path)
    if left:
        raise ImageBuildError(f"not removing {path}: still mounted: {', '.join(left)}")
    shutil.rmtree(path, ignore_errors=True)
