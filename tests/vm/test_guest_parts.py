"""The netem guest's parts that need no virtual machine: the module order, the cpio
archive the kernel unpacks, and the reading of the guest's pytest summary."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import pytest

from tests.conftest import require
from tests.vm import initramfs
from tests.vm.guest import needs
from tests.vm.test_netem_guest import outcome_counts

DEP = "\n".join([
    "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/fscache/fscache.ko.xz"
    " kernel/fs/netfs/netfs.ko.xz",
    "kernel/fs/fscache/fscache.ko.xz: kernel/fs/netfs/netfs.ko.xz",
    "kernel/fs/netfs/netfs.ko.xz:",
    "kernel/net/9p/9pnet.ko.xz:",
    "kernel/net/9p/9pnet_virtio.ko.xz: kernel/drivers/virtio/virtio.ko.xz"
    " kernel/net/9p/9pnet.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz",
    "kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz",
    "kernel/drivers/virtio/virtio_ring.ko.xz:",
])  # fmt: skip


def test_modules_come_after_what_they_need_and_once_each() -> None:
    order = [initramfs.module_name(p) for p in initramfs.load_order(DEP, ["9pnet_virtio", "9p"])]
    assert sorted(order) == sorted(set(order))
    for module, deps in [("9p", ["9pnet", "fscache", "netfs"]), ("fscache", ["netfs"]),
                          ("9pnet_virtio", ["virtio", "9pnet", "virtio_ring"]),
                          ("virtio", ["virtio_ring"])]:  # fmt: skip
        assert all(order.index(n) < order.index(module) for n in deps), order


def test_a_module_missing_from_modules_dep_is_named() -> None:
    with pytest.raises(LookupError, match="sch_netem"):
        initramfs.load_order(DEP, ["sch_netem"])


def test_compressed_modules_are_unpacked_for_insmod(tmp_path: Path) -> None:
    elf = b"\x7fELF module"
    (tmp_path / "a.ko.xz").write_bytes(lzma.compress(elf))
    (tmp_path / "b.ko").write_bytes(elf)
    assert initramfs.module_bytes(tmp_path / "a.ko.xz") == elf
    assert initramfs.module_bytes(tmp_path / "b.ko") == elf
    (tmp_path / "c.ko.zst").write_bytes(b"")
    with pytest.raises(ValueError, match=r"c\.ko\.zst"):
        initramfs.module_bytes(tmp_path / "c.ko.zst")


def read_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, data), read back as the kernel does (and checked as it goes)."""
    files: dict[str, tuple[int, bytes]] = {}
    at = 0
    while True:
        assert data[at : at + 6] == b"070701", at
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name_at = at + 110
        name = data[name_at : name_at + name_size - 1].decode()
        assert data[name_at + name_size - 1] == 0
        body = name_at + name_size + (-(name_at + name_size) % 4)
        if name == "TRAILER!!!":
            assert len(data) == body
            return files
        files[name] = (mode, data[body : body + size])
        at = body + size + (-(body + size) % 4)


def test_the_archive_reads_back_file_by_file() -> None:
    archive = initramfs.newc([("bin", 0o040755, b""), ("bin/x", 0o100755, b"12345"),
                              ("init", 0o100755, b"#!/bin/sh\n")])  # fmt: skip
    assert read_newc(archive) == {
        "bin": (0o040755, b""),
        "bin/x": (0o100755, b"12345"),
        "init": (0o100755, b"#!/bin/sh\n"),
    }


def test_the_initramfs_of_this_machines_kernel(tmp_path: Path) -> None:
    reason = needs()
    require(reason is None, reason or "")
    kernel = initramfs.netem_kernel()
    assert kernel is not None
    files = read_newc(gzip.decompress(initramfs.build(kernel, tmp_path / "i.gz").read_bytes()))
    listed = files["modules"][1].decode().split()
    assert {"9p", "9pnet_virtio", "virtio_pci"} <= set(listed)
    assert all(files[f"mod/{m}.ko"][1].startswith(b"\x7fELF") for m in listed)
    init = files["init"][1].decode()
    assert files["init"][0] == 0o100755
    assert f"{initramfs.ROOT_TAG} /newroot" in init and f"{initramfs.JOB_TAG} /newroot/mnt" in init


def test_outcome_counts_reads_pytests_last_line() -> None:
    out = "....\n\n===== 6 passed, 1 skipped, 3 deselected in 98.12s (0:01:38) =====\n"
    assert outcome_counts(out) == {"passed": 6, "skipped": 1, "deselected": 3}
    assert outcome_counts("") == {}
