"""Run a command in a throwaway virtual machine whose kernel has netem.

A machine whose own kernel was built without the netem qdisc (the containers of some CI
services, this project's own build machine) cannot delay, reorder or duplicate a packet,
and Docker's containers share that kernel. The guest boots Debian's kernel under QEMU
with the host's root file system shared read-only over 9p, so it runs the very python3,
project checkout, iproute2 and tcpdump of the host, with real netem qdiscs in real
namespaces of its own kernel. Software emulation (TCG) is used: it needs no /dev/kvm and
boots in about six seconds here; the command runs some times slower than on the host.

    mkdir -p results
    python3 -m tests.vm.guest --share results -- lab experiment rtt --out results/rtt

The guest's exit status is the command's; the command's output is printed after it ends.
The host's files are read-only in the guest, but for the folder given with ``--share``,
writable at its own path (there the results of a run outlive the guest).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.vm import initramfs

QEMU = "qemu-system-x86_64"
BOOT_SECONDS = 120  # allowance for booting and powering off, on top of the job's time
MEMORY_MB = 3072
DOCKER_MEMORY_MB = 6144  # the engine's images and containers live on the guest's tmpfs
# The guest's Docker engine: its own storage on the guest's tmpfs (not the host's settings,
# whose storage driver and data root are the host engine's).
DAEMON_JSON = {"data-root": "/tmp/docker", "storage-driver": "overlay2"}
RUNNER = Path(__file__).with_name("guest_runner.py")
# An emulated CPU model, not "max": under "max" a container's start (runc) spun in the
# guest's kernel until the soft-lockup watchdog spoke, and never finished (QEMU 7.2, TCG).
CPU = "Haswell-v4"


@dataclass(frozen=True)
class GuestRun:
    returncode: int | None  # None: the job did not finish (its reason in ``error``)
    output: str
    error: str
    console: str
    seconds: float


def needs() -> str | None:
    """What this machine lacks to boot the guest (``.ci/setup`` installs it), or None."""
    if os.geteuid() != 0:
        return "the netem guest needs root (it runs the lab's namespaces inside)"
    if shutil.which(QEMU) is None:
        return f"the netem guest needs {QEMU} (Debian's qemu-system-x86)"
    if not initramfs.BUSYBOX.is_file():
        return f"the netem guest needs {initramfs.BUSYBOX} (Debian's busybox-static)"
    if initramfs.netem_kernel() is None:
        return "the netem guest needs a kernel with netem in /boot (Debian's linux-image-amd64)"
    return None


def qemu_argv(
    kernel: initramfs.Kernel,
    initrd: Path,
    job: Path,
    console: Path,
    share: Path | None = None,
    memory_mb: int = MEMORY_MB,
) -> list[str]:
    cpus = str(min(2, os.cpu_count() or 1))
    local = "local,security_model=passthrough,path="
    return [
        QEMU, "-accel", "tcg,thread=multi", "-cpu", CPU, "-smp", cpus, "-m", str(memory_mb),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-serial", f"file:{console}", "-monitor", "none",
        "-kernel", str(kernel.image), "-initrd", str(initrd),
        "-append", "console=ttyS0 quiet panic=-1 rdinit=/init",
        "-virtfs", f"{local}/,mount_tag={initramfs.ROOT_TAG},readonly=on,multidevs=remap",
        "-virtfs", f"{local}{job},mount_tag={initramfs.JOB_TAG}",
    ] + (["-virtfs", f"{local}{share},mount_tag=share"] if share else [])  # fmt: skip


def run_in_guest(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    share: Path | None = None,
    images: Sequence[str] = (),
) -> GuestRun:
    """Boot a guest, run ``argv`` in it and power it off; nothing of it is left after.
    ``share``: a host folder the guest may write in, at the same path. ``images``: Docker
    images of the host's engine; when given, the guest starts an engine of its own with
    them loaded before ``argv`` runs."""
    kernel = initramfs.netem_kernel()
    if kernel is None:
        raise RuntimeError(needs() or "no kernel with netem")
    started = time.monotonic()
    share = share.resolve() if share else None
    with tempfile.TemporaryDirectory(prefix="slab-vm-") as tmp:
        folder = Path(tmp)
        job = folder / "job"
        job.mkdir()
        job_doc = {"argv": list(argv), "cwd": str(cwd), "env": dict(env), "timeout": timeout,
                   "share": str(share) if share else None,
                   "docker": bool(images), "images": _save_images(images, job)}  # fmt: skip
        (job / "job.json").write_text(json.dumps(job_doc))
        (job / "python").symlink_to(sys.executable)
        shutil.copyfile(RUNNER, job / "runner.py")
        initrd = initramfs.build(kernel, folder / "initrd.gz")
        console = folder / "console.log"
        memory = DOCKER_MEMORY_MB if images else MEMORY_MB
        _boot(qemu_argv(kernel, initrd, job, console, share, memory), timeout + BOOT_SECONDS)
        return _result(job, console, time.monotonic() - started)


def _save_images(images: Sequence[str], job: Path) -> list[str]:
    """Each image saved into the job folder; their paths as the guest sees them."""
    if not images:
        return []
    (job / "daemon.json").write_text(json.dumps(DAEMON_JSON))
    paths = []
    for i, image in enumerate(images):
        subprocess.run(["docker", "save", "-o", str(job / f"image-{i}.tar"), image],
                       check=True, timeout=600)  # fmt: skip
        paths.append(f"/mnt/image-{i}.tar")
    return paths


def _boot(argv: list[str], limit: float) -> None:
    qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        _, err = qemu.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        qemu.kill()
        qemu.communicate()
        return  # the missing status.json says it
    finally:
        if qemu.poll() is None:  # interrupted: the guest goes with us
            qemu.kill()
            qemu.wait()
    if qemu.returncode != 0:
        raise RuntimeError(f"{QEMU} exited {qemu.returncode}: {err.decode(errors='replace')}")


def _result(job: Path, console: Path, seconds: float) -> GuestRun:
    text = console.read_text(errors="replace") if console.exists() else ""
    output_file = job / "output.log"
    output = output_file.read_text(errors="replace") if output_file.exists() else ""
    status_file = job / "status.json"
    if not status_file.exists():
        return GuestRun(None, output, "the guest never reported (see its console)", text, seconds)
    status = json.loads(status_file.read_text())
    code = status.get("returncode")
    error = str(status.get("error", ""))
    engine_log = job / "dockerd.log"
    if code is None and engine_log.exists():
        error += "\n-- dockerd.log --\n" + engine_log.read_text(errors="replace")[-3000:]
    return GuestRun(code, output, error, text, seconds)


def guest_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a command gets in the guest: the host's PATH (with the python3 that
    runs this), a HOME of its own on the guest's tmpfs, nothing written into the host."""
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/sbin", "/usr/bin",
                            "/sbin", "/bin"])  # fmt: skip
    env = {"PATH": path, "HOME": "/tmp/home", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra or {})
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the command")
    parser.add_argument("--share", type=Path, help="a folder the guest may write in")
    parser.add_argument(
        "--image", action="append", default=[],
        help="a Docker image of the host to load into an engine of the guest (repeatable)",
    )  # fmt: skip
    parser.add_argument("command", nargs="+", help="the command and its arguments")
    args = parser.parse_args(argv)
    if args.share is not None and not args.share.is_dir():
        parser.error(f"--share {args.share}: no such folder")
    reason = needs()
    if reason is not None:
        print(f"guest: {reason}", file=sys.stderr)
        return 2
    kernel = initramfs.netem_kernel()
    print(f"guest: booting {kernel.image if kernel else '?'} under {QEMU} ...", file=sys.stderr)
    run = run_in_guest(args.command, cwd=Path.cwd(), env=guest_env(), timeout=args.timeout,
                       share=args.share, images=args.image)  # fmt: skip
    sys.stdout.write(run.output)
    print(f"guest: done in {run.seconds:.1f} s, exit status {run.returncode}", file=sys.stderr)
    if run.returncode is None:
        print(f"guest: {run.error}\n{run.console[-3000:]}", file=sys.stderr)
        return 1
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
