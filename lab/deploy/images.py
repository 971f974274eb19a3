"""The lab's container images: a Debian base with the node tools, and the node image on top.

The base is made one of two ways from the same package list (``lab.deploy.image_inputs``):

- ordinary: ``images/Dockerfile`` (``FROM debian:bookworm-slim`` + ``apt-get install``), for
  engines that can pull from a registry;
- offline: debootstrap from the host's own Debian mirror (``lab.deploy.offline``).

The node image is then always built by ``images/node.Dockerfile`` ``FROM`` that base, adding
``lab/__init__.py`` and ``lab/programs/`` under ``/opt/socket-lab``, so the program layer is the
same either way. A report image adds the whole ``lab`` package on the node image, for the
compose lab's report service (``lab report`` in a container). An image whose input hash
already exists is not rebuilt.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from lab.data import IMAGES_DIR
from lab.deploy.apt import host_apt_source
from lab.deploy.engine import build_dir, connect, docker_build, image_id, labelled
from lab.deploy.image_inputs import (
    BASE_ID_LABEL,
    BASE_REPO,
    HASH_LABEL,
    IMAGE_LABEL,
    NODE_REPO,
    PACKAGE_DIR,
    REPORT_REPO,
    UPSTREAM_BASE,
    ImageBuildError,
    Progress,
    PullFailed,
    node_hash,
    ordinary_base_hash,
    package_files,
    program_files,
    report_hash,
)
from lab.deploy.offline import offline_base, offline_base_hash


def node_image() -> str | None:
    """The node image reference if it is built and matches the current inputs, else None.
    None too when the engine cannot be reached."""
    try:
        engine = docker.from_env()
        return labelled(engine, "node", node_hash())
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return None


def report_image() -> str | None:
    """The report image (the node image and the whole lab, for compose's report service)
    if it is built and matches the current inputs, else None."""
    try:
        engine = docker.from_env()
        return labelled(engine, "report", report_hash())
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return None


def _ordinary_base(client: docker.DockerClient, progress: Progress) -> str:
    digest = ordinary_base_hash()
    ref = f"{BASE_REPO}:{digest}"
    if image_id(client, UPSTREAM_BASE) is None:
        progress(f"pulling {UPSTREAM_BASE}")
        try:
            repo, tag = UPSTREAM_BASE.split(":")
            client.images.pull(repo, tag=tag)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise PullFailed(f"cannot pull {UPSTREAM_BASE}: {exc}") from exc
    progress(f"building {ref} from images/Dockerfile")
    with build_dir() as ctx:
        shutil.copy2(IMAGES_DIR / "Dockerfile", ctx / "Dockerfile")
        shutil.copy2(IMAGES_DIR / "packages.txt", ctx / "packages.txt")
        labels = {IMAGE_LABEL: "base", HASH_LABEL: digest, "socket-lab.base": "ordinary"}
        docker_build(client, ctx, "Dockerfile", ref, labels, {}, progress)
    return ref


def _existing_base(client: docker.DockerClient, offline: bool | None) -> str | None:
    if offline is not True:
        ref = labelled(client, "base", ordinary_base_hash())
        if ref is not None or offline is False:
            return ref
    try:
        source = host_apt_source()
    except ImageBuildError:  # no Debian mirror here: there can be no offline base either
        return None
    return labelled(client, "base", offline_base_hash(source))


def _base(client: docker.DockerClient, offline: bool | None, progress: Progress) -> str:
    existing = _existing_base(client, offline)
    if existing is not None:
        progress(f"base {existing} is up to date")
        return existing
    if offline is not True:
        try:
            return _ordinary_base(client, progress)
        except PullFailed as exc:
            if offline is False:
                raise
            progress(f"{exc}; building the base offline from the host's Debian mirror")
    return offline_base(client, progress)


def _layer(client: docker.DockerClient, kind: str, on: str, progress: Progress) -> str:
    """The ``kind`` image ("node": the programs; "report": the whole lab, for compose's
    report service) built by ``images/node.Dockerfile`` on the image ``on``."""
    repo, digest, files = _LAYERS[kind]()
    ref = f"{repo}:{digest}"
    on_id = image_id(client, on)
    assert on_id is not None
    with suppress(docker.errors.ImageNotFound):
        labels = client.images.get(ref).labels or {}
        if labels.get(BASE_ID_LABEL) == on_id:
            progress(f"{kind} image {ref} is up to date")
            client.images.get(ref).tag(repo, "latest")
            return ref
    progress(f"building {ref} from images/node.Dockerfile on {on}")
    with build_dir() as ctx:
        shutil.copy2(IMAGES_DIR / "node.Dockerfile", ctx / "Dockerfile")
        for rel in files:
            (ctx / "lab" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PACKAGE_DIR / rel, ctx / "lab" / rel)
        labels = {IMAGE_LABEL: kind, HASH_LABEL: digest, BASE_ID_LABEL: on_id}
        docker_build(client, ctx, "Dockerfile", ref, labels, {"BASE": on}, progress)
    # A stable name too, for compose files and for people typing docker run.
    client.images.get(ref).tag(repo, "latest")
    _prune(client, kind, repo, keep=digest, progress=progress)
    return ref


_LAYERS: dict[str, Callable[[], tuple[str, str, list[Path]]]] = {
    "node": lambda: (NODE_REPO, node_hash(), program_files()),
    "report": lambda: (REPORT_REPO, report_hash(), package_files()),
}


# Images of other inputs kept besides the current one: two checkouts of the lab on one
# machine (a teacher's and a student's, or two branches) each keep theirs.
KEEP_OTHERS = 3


def _prune(
    client: docker.DockerClient, kind: str, repo: str, keep: str, progress: Progress
) -> None:
    """Untag images of this kind beyond the current one and the ``KEEP_OTHERS`` newest of
    other inputs, so that edits to the lab do not pile up images. One a container still
    uses is left alone (the engine refuses, and that is fine)."""
    images = client.images.list(filters={"label": [f"{IMAGE_LABEL}={kind}"]})
    others = [i for i in images if (i.labels or {}).get(HASH_LABEL) != keep]
    others.sort(key=lambda i: str(i.attrs.get("Created", "")), reverse=True)
    for image in others[KEEP_OTHERS:]:
        for tag in image.tags:
            if tag.startswith(repo + ":"):
                with suppress(docker.errors.APIError):
                    client.images.remove(tag)
                    progress(f"removed superseded {tag}")


def build_images(*, offline: bool | None, progress: Progress) -> str:
    """Build (or find up to date) the base and node images; returns the node image reference.

    ``offline=None`` tries the ordinary Dockerfile and falls back to the offline build when
    ``debian:bookworm-slim`` cannot be pulled; ``True`` always builds offline; ``False`` never.
    An image whose input hash already exists is not rebuilt.
    """
    started = time.monotonic()
    client = connect()
    try:
        base = _base(client, offline, progress)
        ref = _layer(client, "node", base, progress)
        _layer(client, "report", ref, progress)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ImageBuildError(f"image build failed: {exc}") from exc
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
        raise ImageBuildError(f"{exc.cmd[0]} failed (exit {exc.returncode}): {err}") from exc
    finally:
        client.close()
    progress(f"node image {ref} ready ({time.monotonic() - started:.1f} s)")
    return ref


def image_info(ref: str) -> dict[str, Any]:
    """Size (bytes) and labels of an image, for reports and benchmarks."""
    client = connect()
    try:
        image = client.images.get(ref)
        return {"id": image.id, "size": image.attrs.get("Size"), "labels": image.labels}
    finally:
        client.close()
