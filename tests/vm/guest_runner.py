"""The guest's first process after the initramfs: runs the job the host left in the job
folder (``/mnt/job.json``: argv, cwd, env, timeout, a host folder to mount writable), its
output to ``/mnt/output.log``, then writes ``/mnt/status.json`` and powers the guest off.
Standard library only: it runs under the host's python3 before anything else of the guest
is set up."""

import json
import os
import subprocess
import time

JOB = "/mnt"
DOCKER_WAIT_SECONDS = 180


def start_docker(images: list[str], env: dict[str, str]) -> None:
    """A Docker engine of the guest's own (its storage on the guest's tmpfs, its settings
    from the job folder, not the host's), with the images the host saved for it loaded."""
    log = open(f"{JOB}/dockerd.log", "wb")  # noqa: SIM115 - the engine writes it until power-off
    subprocess.Popen(["dockerd", "--config-file", f"{JOB}/daemon.json"], stdin=subprocess.DEVNULL,
                     stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    deadline = time.monotonic() + DOCKER_WAIT_SECONDS
    while subprocess.run(["docker", "info"], capture_output=True, env=env).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"dockerd gave no answer in {DOCKER_WAIT_SECONDS} s")
        time.sleep(1)
    for tar in images:
        subprocess.run(["docker", "load", "-q", "-i", tar], check=True, env=env,
                       stdout=subprocess.DEVNULL)  # fmt: skip


def main() -> None:
    status: dict[str, object] = {}
    started = time.monotonic()
    try:
        with open(f"{JOB}/job.json") as f:
            job = json.load(f)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        if job.get("share"):  # the host's folder, writable, at its own path
            os.makedirs(job["share"], exist_ok=True)  # a folder under the guest's own /tmp
            options = "trans=virtio,version=9p2000.L,msize=512000"
            subprocess.run(["mount", "-t", "9p", "-o", options, "share", job["share"]], check=True)
        if job.get("docker"):
            start_docker(job["images"], job["env"])
        with open(f"{JOB}/output.log", "wb") as out:
            done = subprocess.run(
                job["argv"], cwd=job["cwd"], env=job["env"], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, timeout=job["timeout"], check=False,
            )  # fmt: skip
        status = {"returncode": done.returncode}
    except subprocess.TimeoutExpired:
        status = {"returncode": None, "error": "the job ran out of time in the guest"}
    except Exception as exc:  # the host must hear of it, not find a guest that hangs
        status = {"returncode": None, "error": f"{type(exc).__name__}: {exc}"}
    status["seconds"] = round(time.monotonic() - started, 3)
    with open(f"{JOB}/status.json", "w") as f:
        json.dump(status, f)
    os.sync()
    with open("/proc/sysrq-trigger", "w") as f:
        f.write("o")  # power off at once: PID 1 must not exit, or the kernel panics
    time.sleep(60)


if __name__ == "__main__":
    main()
