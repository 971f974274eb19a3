"""The lab's container images: a Debian base with the node tools, and the node image on top.

The base is made one of two ways from the same package list (``lab.deploy.image_inputs``):

- ordinary: ``images/Dockerfile`` (``FROM debian:bookworm-slim`` + ``apt-get install``), for
  engines that can pull from a registry;
- offline: debootstrap from the host's own Debian mirror (``lab.deploy.offline``).

The node image is then always built by ``images/node.Dockerfile`` ``FROM`` that base, adding
``lab/__init__.py`` and ``lab/programs/`` under ``/opt/socket-lab``, so the program layer is the
same either way. An image whose input hash already exists is not rebuilt.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import suppress
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
    UPSTREAM_BASE,
    ImageBuildError,
    Progress,
    PullFailed,
    node_hash,
    ordinary_base_hash,
    program_files,
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


def _node(client: docker.DockerClient, base: str, progress: Progress) -> str:
    digest = node_hash()
    ref = f"{NODE_REPO}:{digest}"
    base_id = image_id(client, base)
    assert base_id is not None
    with suppress(docker.errors.ImageNotFound):
        labels = client.images.get(ref).labels or {}
        if labels.get(BASE_ID_LABEL) == base_id:
            progress(f"node image {ref} is up to date")
            client.images.get(ref).tag(NODE_REPO, "latest")
            return ref
    progress(f"building {ref} from images/node.Dockerfile on {base}")
    with build_dir() as ctx:
        shutil.copy2(IMAGES_DIR / "node.Dockerfile", ctx / "Dockerfile")
        for rel in program_files():
            (ctx / "lab" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PACKAGE_DIR / rel, ctx / "lab" / rel)
        labels = {IMAGE_LABEL: "node", HASH_LABEL: digest, BASE_ID_LABEL: base_id}
        docker_build(client, ctx, "Dockerfile", ref, labels, {"BASE": base}, progress)
    # A stable name too, for compose files and for people typing docker run.
    client.images.get(ref).tag(NODE_REPO, "latest")
    _prune_nodes(client, keep=digest, progress=progress)
    return ref


def _prune_nodes(client: docker.DockerClient, keep: str, progress: Progress) -> None:
    """Untag node images of older inputs, so that edits to the programs do not pile up
    images. One a container still uses is left alone (the engine refuses, and that is fine)."""
    for image in client.images.list(filters={"label": [f"{IMAGE_LABEL}=node"]}):
        if (image.labels or {}).get(HASH_LABEL) == keep:
            continue
        for tag in image.tags:
            if tag.startswith(NODE_REPO + ":"):
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
        ref = _node(client, base, progress)
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
