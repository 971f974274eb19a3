"""The offline base: ``debootstrap --variant=minbase --include=<the package list>`` from the
mirror in the host's own apt sources, stripped of docs and apt lists, then ``docker
import``-ed — for machines and classrooms without a registry."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from lab.deploy.apt import AptSource, host_apt_source
from lab.deploy.engine import build_dir, image_id
from lab.deploy.image_inputs import (
    BASE_REPO,
    HASH_LABEL,
    IMAGE_LABEL,
    OFFLINE_RECIPE,
    ImageBuildError,
    Progress,
    digest,
    packages,
)

# Removed from the debootstrapped tree: what bookworm-slim leaves out, plus apt's state.
STRIP = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
    "var/log",
    "tmp",
)

# Of debootstrap's per-package progress lines, one in this many is shown.
THIN = 40

DEBOOTSTRAP_CACHE = Path("/var/cache/socket-lab/debootstrap")


def offline_base_hash(source: AptSource) -> str:
    return digest(
        [
            ("packages", "\n".join(packages()).encode()),
            ("mirror", source.mirror.encode()),
            ("suite", source.suite.encode()),
            ("offline-recipe", OFFLINE_RECIPE.encode()),
        ]
    )


_PER_PACKAGE_VERBS = {"Retrieving", "Validating", "Extracting", "Unpacking", "Configuring"}
_PHASE_WORDS = {"required", "base", "the", "core"}


def _per_package(line: str) -> bool:
    words = line.split()
    return (
        len(words) in (3, 4)
        and words[0] == "I:"
        and words[1] in _PER_PACKAGE_VERBS
        and words[2] not in _PHASE_WORDS
    )


def _debootstrap(source: AptSource, target: Path, progress: Progress) -> None:
    DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
    argv = [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(packages()),
        f"--cache-dir={DEBOOTSTRAP_CACHE}",
        source.suite,
        str(target),
        source.mirror,
    ]
    progress(f"debootstrap {source.suite} from {source.mirror} (packages: {len(packages())})")
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        shown = 0
        for count, raw in enumerate(proc.stdout, 1):
            line = raw.rstrip()
            tail = [*tail[-19:], line]
            # Per-package lines ("I: Retrieving libc6 2.36") are sampled; the rest
            # (phases, warnings, errors) are all shown.
            if not _per_package(line) or count - shown >= THIN:
                progress(f"  {line}")
                shown = count
        status = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: do not leave debootstrap writing the tree
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if status != 0:
        raise ImageBuildError(
            f"debootstrap failed (exit {status}); last lines:\n" + "\n".join(tail[-8:])
        )


def _strip(root: Path) -> None:
    for rel in STRIP:
        directory = root / rel
        if directory.is_dir() and not directory.is_symlink():
            for child in directory.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def offline_base(client: docker.DockerClient, progress: Progress) -> str:
    if os.geteuid() != 0:
        raise ImageBuildError("the offline image build runs debootstrap and needs root")
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("the offline image build needs debootstrap (apt install debootstrap)")
    source = host_apt_source()
    key = offline_base_hash(source)
    ref = f"{BASE_REPO}:{key}"
    with build_dir() as work:
        root = work / "root"
        _debootstrap(source, root, progress)
        progress("stripping docs, locales and apt lists")
        _strip(root)
        tarball = work / "base.tar"
        progress("packing the tree")
        # Device nodes are left out: the engine gives every container its own /dev.
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball),
             "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."],
            check=True, capture_output=True,
        )  # fmt: skip
        progress(f"importing {ref} ({tarball.stat().st_size // 2**20} MiB)")
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["bash"]',
            f"LABEL {IMAGE_LABEL}=base {HASH_LABEL}={key} socket-lab.base=offline",
        ]
        try:
            client.api.import_image_from_file(
                str(tarball), repository=BASE_REPO, tag=key, changes=changes
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise ImageBuildError(f"importing {ref}: {exc}") from exc
    if image_id(client, ref) is None:
        raise ImageBuildError(f"importing {ref}: the engine reported no image")
    return ref
