"""The lab's container images: a Debian base with the node tools, and the node image on top.

One package list (``images/packages.txt``) feeds two ways of making the same base:

- ordinary: ``images/Dockerfile`` (``FROM debian:bookworm-slim`` + ``apt-get install``), for
  engines that can pull from a registry;
- offline: ``debootstrap --variant=minbase --include=<the list>`` from the mirror in the host's
  own apt sources, stripped of docs and apt lists, then ``docker import``-ed — for machines and
  classrooms without a registry.

The node image is then always built by ``images/node.Dockerfile`` ``FROM`` that base, adding
``lab/__init__.py`` and ``lab/programs/`` under ``/opt/socket-lab``, so the program layer is the
same either way. Every image is tagged and labelled with a hash of its inputs; a build whose
image already exists does nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

import lab
from lab.data import IMAGES_DIR
from lab.errors import LabError

Progress = Callable[[str], None]

IMAGE_LABEL = "socket-lab.image"
HASH_LABEL = "socket-lab.hash"
BASE_ID_LABEL = "socket-lab.base-id"
NODE_REPO = "socket-lab-node"
BASE_REPO = "socket-lab-base"
UPSTREAM_BASE = "debian:bookworm-slim"

# Bump when the offline recipe below changes in a way that changes the base it makes.
OFFLINE_RECIPE = "1"

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

PACKAGE_DIR = Path(lab.__file__).resolve().parent
BUILD_ROOT = Path("/var/tmp")
DEBOOTSTRAP_CACHE = Path("/var/cache/socket-lab/debootstrap")


class ImageBuildError(LabError):
    """An image could not be built; the message says which step failed and why."""


class PullFailed(ImageBuildError):
    """The ordinary base (``debian:bookworm-slim``) could not be pulled."""


# -- inputs -------------------------------------------------------------------------------


def packages(images_dir: Path = IMAGES_DIR) -> list[str]:
    """The package list, comments and blank lines dropped."""
    text = (images_dir / "packages.txt").read_text()
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [n for n in names if n]


def program_files(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """``lab/__init__.py`` and every program file, relative to the package, sorted."""
    files = [Path("__init__.py")]
    programs = package_dir / "programs"
    if programs.is_dir():
        for path in sorted(programs.rglob("*")):
            rel = path.relative_to(package_dir)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                files.append(rel)
    return files


def _digest(parts: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        # Length-prefixed, so that moving bytes between two parts changes the hash.
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def node_hash() -> str:
    """Hash of everything that goes into the node image, whichever way its base is made."""
    parts = [
        (f"images/{name}", (IMAGES_DIR / name).read_bytes())
        for name in ("packages.txt", "Dockerfile", "node.Dockerfile")
    ]
    parts += [(f"lab/{rel}", (PACKAGE_DIR / rel).read_bytes()) for rel in program_files()]
    parts.append(("offline-recipe", OFFLINE_RECIPE.encode()))
    return _digest(parts)


def ordinary_base_hash() -> str:
    return _digest(
        [
            ("images/packages.txt", (IMAGES_DIR / "packages.txt").read_bytes()),
            ("images/Dockerfile", (IMAGES_DIR / "Dockerfile").read_bytes()),
        ]
    )


def offline_base_hash(source: AptSource) -> str:
    return _digest(
        [
            ("packages", "\n".join(packages()).encode()),
            ("mirror", source.mirror.encode()),
            ("suite", source.suite.encode()),
            ("offline-recipe", OFFLINE_RECIPE.encode()),
        ]
    )


# -- the host's apt sources -------------------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    mirror: str
    suite: str


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Stanzas of a deb822 ``.sources`` file (comment lines dropped, keys lower-cased)."""
    stanza: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, ""
        elif line[0] in " \t" and key:
            stanza[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            stanza[key] = value.strip()


def _entries(apt_dir: Path) -> Iterator[tuple[str, str]]:
    """(uri, suite) of every enabled binary ``deb`` source, in apt's reading order."""
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in {".list", ".sources"})
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for st in _deb822_stanzas(text):
                if "deb" not in st.get("types", "").split():
                    continue
                if st.get("enabled", "yes").lower() == "no":
                    continue
                for uri in st.get("uris", "").split():
                    for suite in st.get("suites", "").split():
                        yield uri, suite
        else:
            for raw in text.splitlines():
                words = raw.split("#", 1)[0].split()
                if not words or words[0] != "deb":
                    continue
                words = words[1:]
                if words and words[0].startswith("["):  # [arch=amd64 signed-by=...]
                    while words and not words[0].endswith("]"):
                        words = words[1:]
                    words = words[1:]
                if len(words) >= 2:
                    yield words[0], words[1]


def _codename(os_release: Path) -> str | None:
    with suppress(OSError):
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or None
    return None


def host_apt_source(
    apt_dir: Path = Path("/etc/apt"), os_release: Path = Path("/etc/os-release")
) -> AptSource:
    """The mirror and suite the host itself installs from: the source whose suite is the
    host's release codename (not -updates/-security), else the first plain suite."""
    entries = [(u.rstrip("/"), s) for u, s in _entries(apt_dir) if u.startswith(("http", "file"))]
    codename = _codename(os_release)
    for uri, suite in entries:
        if suite == codename:
            return AptSource(uri, suite)
    for uri, suite in entries:
        if "-" not in suite and "/" not in suite:
            return AptSource(uri, suite)
    raise ImageBuildError(
        f"no Debian mirror found in {apt_dir}/sources.list or {apt_dir}/sources.list.d "
        "for the offline image build"
    )


# -- engine helpers -------------------------------------------------------------------------


def _client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ImageBuildError(f"Docker engine not reachable at {where}: {exc}") from exc
    return client


def _image_id(client: docker.DockerClient, ref: str) -> str | None:
    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    return str(image.id)


def _labelled(client: docker.DockerClient, kind: str, digest: str) -> str | None:
    """The reference of an image with our kind and hash labels, if one exists."""
    repo = NODE_REPO if kind == "node" else BASE_REPO
    for image in client.images.list(filters={"label": [f"{IMAGE_LABEL}={kind}"]}):
        labels = image.labels or {}
        if labels.get(HASH_LABEL) == digest:
            tags = [t for t in image.tags if t.startswith(repo + ":")]
            return tags[0] if tags else str(image.id)
    return None


def node_image() -> str | None:
    """The node image reference if it is built and matches the current inputs, else None.
    None too when the engine cannot be reached."""
    try:
        client = docker.from_env()
        return _labelled(client, "node", node_hash())
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return None


def _build(
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
    image_id = _image_id(client, tag)
    if image_id is None:
        raise ImageBuildError(f"building {tag}: the engine reported no image")
    return image_id


@contextmanager
def _build_dir() -> Iterator[Path]:
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


# -- the two ways to a base -------------------------------------------------------------------


def _ordinary_base(client: docker.DockerClient, progress: Progress) -> str:
    digest = ordinary_base_hash()
    ref = f"{BASE_REPO}:{digest}"
    if _image_id(client, UPSTREAM_BASE) is None:
        progress(f"pulling {UPSTREAM_BASE}")
        try:
            repo, tag = UPSTREAM_BASE.split(":")
            client.images.pull(repo, tag=tag)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise PullFailed(f"cannot pull {UPSTREAM_BASE}: {exc}") from exc
    progress(f"building {ref} from images/Dockerfile")
    with _build_dir() as ctx:
        shutil.copy2(IMAGES_DIR / "Dockerfile", ctx / "Dockerfile")
        shutil.copy2(IMAGES_DIR / "packages.txt", ctx / "packages.txt")
        labels = {IMAGE_LABEL: "base", HASH_LABEL: digest, "socket-lab.base": "ordinary"}
        _build(client, ctx, "Dockerfile", ref, labels, {}, progress)
    return ref


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


def _offline_base(client: docker.DockerClient, progress: Progress) -> str:
    if os.geteuid() != 0:
        raise ImageBuildError("the offline image build runs debootstrap and needs root")
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("the offline image build needs debootstrap (apt install debootstrap)")
    source = host_apt_source()
    digest = offline_base_hash(source)
    ref = f"{BASE_REPO}:{digest}"
    with _build_dir() as work:
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
            f"LABEL {IMAGE_LABEL}=base {HASH_LABEL}={digest} socket-lab.base=offline",
        ]
        try:
            client.api.import_image_from_file(
                str(tarball), repository=BASE_REPO, tag=digest, changes=changes
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise ImageBuildError(f"importing {ref}: {exc}") from exc
    if _image_id(client, ref) is None:
        raise ImageBuildError(f"importing {ref}: the engine reported no image")
    return ref


def _existing_base(client: docker.DockerClient, offline: bool | None) -> str | None:
    if offline is not True:
        ref = _labelled(client, "base", ordinary_base_hash())
        if ref is not None or offline is False:
            return ref
    try:
        source = host_apt_source()
    except ImageBuildError:  # no Debian mirror here: there can be no offline base either
        return None
    return _labelled(client, "base", offline_base_hash(source))


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
    return _offline_base(client, progress)


def _node(client: docker.DockerClient, base: str, progress: Progress) -> str:
    digest = node_hash()
    ref = f"{NODE_REPO}:{digest}"
    base_id = _image_id(client, base)
    assert base_id is not None
    with suppress(docker.errors.ImageNotFound):
        labels = client.images.get(ref).labels or {}
        if labels.get(BASE_ID_LABEL) == base_id:
            progress(f"node image {ref} is up to date")
            client.images.get(ref).tag(NODE_REPO, "latest")
            return ref
    progress(f"building {ref} from images/node.Dockerfile on {base}")
    with _build_dir() as ctx:
        shutil.copy2(IMAGES_DIR / "node.Dockerfile", ctx / "Dockerfile")
        for rel in program_files():
            (ctx / "lab" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PACKAGE_DIR / rel, ctx / "lab" / rel)
        labels = {IMAGE_LABEL: "node", HASH_LABEL: digest, BASE_ID_LABEL: base_id}
        _build(client, ctx, "Dockerfile", ref, labels, {"BASE": base}, progress)
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
    client = _client()
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
    client = _client()
    try:
        image = client.images.get(ref)
        return {"id": image.id, "size": image.attrs.get("Size"), "labels": image.labels}
    finally:
        client.close()
