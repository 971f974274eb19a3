"""The guest's boot files: a Debian kernel of the machine's own (``linux-image-amd64``, which
is built with netem as a module) and a small initramfs of our own making, whose ``/init``
loads the virtio and 9p modules, mounts the host's root read-only over 9p, puts fresh
``/tmp``, ``/run``, ``/proc``, ``/sys`` and ``/dev`` on it and hands over to the guest
runner. No file of the host is changed: the guest writes only to its own tmpfs and to the
job folder, a second 9p share."""

from __future__ import annotations

import gzip
import io
import lzma
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: no library to bring along
BOOT = Path("/boot")
MODULES = Path("/lib/modules")
# The modules the guest needs before it has a root: virtio's PCI transport and the 9p file
# system over it. Everything else (veth, bridge, sch_netem, ...) the guest kernel loads
# itself with the host's modprobe once the host's root is mounted.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
ROOT_TAG, JOB_TAG = "hostroot", "job"

INIT = f"""#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
for m in $(cat /modules); do $B insmod /mod/$m.ko || echo "guest: insmod $m failed"; done
$B umount /proc
O=trans=virtio,version=9p2000.L,msize=512000
fail() {{ echo "guest: $1"; $B poweroff -f; }}
$B mount -t 9p -o ro,cache=loose,$O {ROOT_TAG} /newroot || fail "cannot mount the host's root"
$B mount -t 9p -o $O {JOB_TAG} /newroot/mnt || fail "cannot mount the job folder"
$B mount -t proc proc /newroot/proc
$B mount -t sysfs sys /newroot/sys
$B mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup
$B mount -t devtmpfs dev /newroot/dev
$B mkdir -p /newroot/dev/pts /newroot/dev/shm
$B mount -t devpts devpts /newroot/dev/pts
for d in /tmp /run /var/tmp /dev/shm; do $B mount -t tmpfs tmpfs /newroot$d; done
exec $B switch_root /newroot /mnt/python /mnt/runner.py
"""


@dataclass(frozen=True)
class Kernel:
    release: str
    image: Path

    @property
    def modules(self) -> Path:
        return MODULES / self.release


def netem_kernel() -> Kernel | None:
    """The newest installed kernel whose modules include netem (never the running one's
    question: the guest boots this kernel, whatever the host runs)."""
    found = []
    for image in BOOT.glob("vmlinuz-*"):
        release = image.name.removeprefix("vmlinuz-")
        kernel = Kernel(release, image)
        if module_file(kernel, "sch_netem") is not None:
            found.append(kernel)
    return max(found, key=lambda k: _release_key(k.release), default=None)


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release))


def module_file(kernel: Kernel, name: str) -> Path | None:
    """The module's file, looked up in ``modules.dep`` rather than by walking the tree."""
    dep = kernel.modules / "modules.dep"
    if not dep.is_file():
        return None
    for line in dep.read_text().splitlines():
        path = line.partition(":")[0]
        if module_name(path) == name:
            return kernel.modules / path
    return None


def load_order(dep_text: str, wanted: Iterable[str]) -> list[str]:
    """The modules to insert, dependencies first, each once, as paths relative to the
    modules folder (read from ``modules.dep``: ``path: dep dep ...``)."""
    deps: dict[str, list[str]] = {}
    for line in dep_text.splitlines():
        path, _, rest = line.partition(":")
        deps[module_name(path)] = [path, *rest.split()]
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in deps:
            raise LookupError(f"module {name} is not in modules.dep")
        path, *needs = deps[name]
        if path in order:
            return
        for dep in needs:
            visit(module_name(dep))
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def module_name(path: str) -> str:
    """``kernel/net/9p/9pnet_virtio.ko.xz`` -> ``9pnet_virtio``."""
    return Path(path).name.split(".ko")[0]


def module_bytes(path: Path) -> bytes:
    """The module as insmod takes it: Debian compresses modules on newer releases."""
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if path.name.endswith(".ko"):
        return data
    raise ValueError(f"{path}: a module format busybox insmod cannot load")


def build(kernel: Kernel, out: Path) -> Path:
    """Write the initramfs (gzip'd newc cpio) for ``kernel`` to ``out``."""
    order = load_order((kernel.modules / "modules.dep").read_text(), BOOT_MODULES)
    names = [module_name(p) for p in order]
    entries: list[tuple[str, int, bytes]] = [
        ("bin", 0o040755, b""),
        ("bin/busybox", 0o100755, BUSYBOX.read_bytes()),
        ("init", 0o100755, INIT.encode()),
        ("modules", 0o100644, " ".join(names).encode()),
        ("mod", 0o040755, b""),
    ]
    entries += [(f"mod/{n}.ko", 0o100644, module_bytes(kernel.modules / p))
                for n, p in zip(names, order, strict=True)]  # fmt: skip
    entries += [(d, 0o040755, b"") for d in ("proc", "newroot", "dev", "sys")]
    out.write_bytes(gzip.compress(newc(entries), compresslevel=1))
    return out


def newc(entries: Iterable[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive in the kernel's "newc" format: a 110-byte ASCII header per file,
    its name and its data, each padded to four bytes; the ``TRAILER!!!`` entry ends it."""
    buf = io.BytesIO()
    all_entries = [*entries, ("TRAILER!!!", 0, b"")]
    for ino, (name, mode, data) in enumerate(all_entries, start=1):
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        buf.write(b"070701" + "".join(f"{f:08x}" for f in fields).encode())
        buf.write(name.encode() + b"\0")
        buf.write(b"\0" * (-buf.tell() % 4))
        buf.write(data)
        buf.write(b"\0" * (-buf.tell() % 4))
    return buf.getvalue()
