"""The second engine of the tests' swarm reached at an ``ssh://`` URL, as a remote machine's.

An ``sshd`` of the test's own runs in the second engine's network namespace, on its veth
address, and gives its sessions ``DOCKER_HOST`` of that engine: the Docker SDK's ssh
transport runs ``docker system dial-stdio`` there, as it would on a machine whose engine
listens on the usual socket. The client side is a home folder of the test's own (``HOME``
for the lab's process): the SDK reads its key and its ``known_hosts`` from ``~/.ssh``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ssh.hosts import SSHD, SSHD_CONFIG, keygen
from tests.swarm.twoengines import TwoEngines


@dataclass
class SshEngine:
    """An sshd in front of the swarm's second engine, and homes that reach it."""

    swarm: TwoEngines
    folder: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"ssh://root@{self.swarm.worker_addr}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        host_key = keygen(self.folder / "host_key")
        config = self.folder / "sshd_config"
        # The ssh tests' sshd, its sessions given the second engine as their DOCKER_HOST.
        text = SSHD_CONFIG.format(
            address=self.swarm.worker_addr,
            host_key=host_key,
            authorized=self.folder / "authorized_keys",
            cat=shutil.which("cat") or "/bin/cat",
        )
        config.write_text(text + f"SetEnv DOCKER_HOST={self.swarm.worker_url}\n")
        (self.folder / "authorized_keys").touch()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.swarm.netns, SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"the engine's sshd did not start: {err}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        address = (self.swarm.worker_addr, 22)
        with contextlib.suppress(OSError), socket.create_connection(address, 1):
            return True
        return False

    def home(self, name: str, *, known: bool = True) -> Path:
        """A home folder whose key the sshd accepts; its ``known_hosts`` holds the engine's
        host key unless ``known`` is false."""
        home = self.folder / name
        ssh = home / ".ssh"
        ssh.mkdir(parents=True, mode=0o700)
        key = keygen(ssh / "id_ed25519")
        with (self.folder / "authorized_keys").open("a") as keys:
            keys.write(Path(f"{key}.pub").read_text())
        if known:
            public = (self.folder / "host_key.pub").read_text().split()[:2]
            (ssh / "known_hosts").write_text(f"{self.swarm.worker_addr} {' '.join(public)}\n")
        return home

    def engines_file(self, folder: Path) -> Path:
        """The swarm's ``--engines`` file, the second engine at its ``ssh://`` URL."""
        path = folder / "engines-ssh.yaml"
        path.write_text(
            f"{json.dumps(self.swarm.manager_host)}: {json.dumps(self.swarm.manager_url)}\n"
            f"{json.dumps(self.swarm.worker_host)}: {json.dumps(self.url)}\n"
        )
        return path

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)
