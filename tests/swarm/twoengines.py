"""A real two-engine Docker Swarm on one machine, made for the swarm tests and removed after.

The machine's engine becomes the swarm's manager; a second ``dockerd`` runs in a network
namespace of the tests' own (``slabtest-``: never counted as the lab's leftovers), reached
over a veth, with its own data root, exec root, socket, pid file and an empty config file,
and joins as a worker. Everything made is undone in ``stop``, which is safe to call after
any partial ``start``: the swarm left on both engines, the second engine stopped by its PID,
its folders, namespace and veth removed, and the ``docker_gwbridge`` and ``ingress``
networks that the swarm made on the machine's engine removed. The session fixtures that
make it (``two_engines``, ``swarm_backend``) are in tests/conftest.py.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# The veth's /30 and the swarm's own address pool: outside every lab subnet (topologies use
# 10.77/16, the tests 10.20-10.30, Docker's placeholders 198.18/15).
LINK_NET = "10.248"
SWARM_POOL = "10.249.0.0/16"
START_WAIT = 60.0
CLONE_NEWUTS = 0x04000000
TLS_PORT = 2376


def _run(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass
class TwoEngines:
    """The swarm's facts for the tests: each engine's URL and swarm node hostname."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    root: Path = field(init=False)
    manager_addr: str = field(init=False)
    worker_addr: str = field(init=False)
    manager_host: str = ""
    worker_host: str = ""
    pid: int | None = None
    swarm_made: bool = False
    steps: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(f"/tmp/slabtest-swarm-{self.tag}")
        third = int(self.tag[:2], 16)
        self.manager_addr = f"{LINK_NET}.{third}.1"
        self.worker_addr = f"{LINK_NET}.{third}.2"

    @property
    def netns(self) -> str:
        return f"slabtest-swarm-{self.tag}"

    @property
    def veth(self) -> str:
        return f"slabtsw{self.tag}"

    @property
    def worker_url(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    manager_url = "unix:///var/run/docker.sock"

    def docker(self, url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run("docker", "-H", url, *args, check=check)

    # -- making it -------------------------------------------------------------------------
    def start(self) -> None:
        state = self.docker(self.manager_url, "info", "--format", "{{.Swarm.LocalNodeState}}")
        if state.stdout.strip() != "inactive":
            raise RuntimeError(f"the machine's engine is already in a swarm ({state.stdout})")
        self._link()
        self._second_engine()
        self._swarm()

    def _link(self) -> None:
        _run("ip", "netns", "add", self.netns)
        self.steps.append("netns")
        _run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0",
             "netns", self.netns)  # fmt: skip
        self.steps.append("veth")
        _run("ip", "addr", "add", f"{self.manager_addr}/30", "dev", self.veth)
        _run("ip", "link", "set", self.veth, "up")
        inside = ["ip", "netns", "exec", self.netns, "ip"]
        _run(*inside, "addr", "add", f"{self.worker_addr}/30", "dev", "eth0")
        _run(*inside, "link", "set", "eth0", "up")
        _run(*inside, "link", "set", "lo", "up")

    def _second_engine(self) -> None:
        for sub in ("data", "exec"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.steps.append("root")
        (self.root / "daemon.json").write_text("{}\n")
        self._certs()
        self._spawn_engine()
        self.steps.append("dockerd")

    def _spawn_engine(self) -> None:
        argv = [
            "nsenter", f"--net=/run/netns/{self.netns}", "--",
            "/usr/sbin/dockerd",
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--host", self.worker_url,
            "--host", f"tcp://{self.worker_addr}:{TLS_PORT}",
            "--tlsverify",
            "--tlscacert", str(self.tls / "ca.pem"),
            "--tlscert", str(self.tls / "server-cert.pem"),
            "--tlskey", str(self.tls / "server-key.pem"),
            "--pidfile", str(self.root / "docker.pid"),
            "--config-file", str(self.root / "daemon.json"),
            "--storage-driver", "vfs",
            "--iptables=false", "--bridge=none",
            "--containerd-namespace", f"slabtest-{self.tag}",
            "--containerd-plugins-namespace", f"slabtest-{self.tag}-plugins",
        ]  # fmt: skip
        log = (self.root / "dockerd.log").open("a")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self._own_hostname,
        )
        log.close()
        # nsenter execs dockerd: the PID is the engine's own.
        self.pid = proc.pid
        deadline = time.monotonic() + START_WAIT
        while self.docker(self.worker_url, "version", check=False).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.root / "dockerd.log").read_text()[-2000:]
                raise RuntimeError(f"the second dockerd did not start: {tail}")
            time.sleep(0.3)

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def worker_tcp(self) -> str:
        return f"tcp://{self.worker_addr}:{TLS_PORT}"

    def _certs(self) -> None:
        """A CA of the tests' own, the second engine's server certificate (for its veth
        address) and a client certificate: its engine is also reached over TCP with TLS."""
        d = self.tls
        d.mkdir(mode=0o700)
        ssl = ["openssl"]
        _run(
            *ssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=slabtest-ca",
            "-keyout",
            str(d / "ca-key.pem"),
            "-out",
            str(d / "ca.pem"),
        )
        for who, ext in (
            ("server", f"subjectAltName=IP:{self.worker_addr}"),
            ("client", "extendedKeyUsage=clientAuth"),
        ):
            _run(
                *ssl,
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                f"/CN=slabtest-{who}",
                "-keyout",
                str(d / f"{who}-key.pem"),
                "-out",
                str(d / f"{who}.csr"),
            )
            (d / f"{who}.ext").write_text(ext + "\n")
            _run(
                *ssl,
                "x509",
                "-req",
                "-in",
                str(d / f"{who}.csr"),
                "-CA",
                str(d / "ca.pem"),
                "-CAkey",
                str(d / "ca-key.pem"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                str(d / f"{who}.ext"),
                "-out",
                str(d / f"{who}-cert.pem"),
            )

    def tls_engines_file(self, folder: Path) -> Path:
        """An ``--engines`` file that reaches the second engine over TCP with TLS."""
        path = folder / "engines-tls.yaml"
        d = self.tls
        path.write_text(
            f"{json.dumps(self.manager_host)}: {json.dumps(self.manager_url)}\n"
            f"{json.dumps(self.worker_host)}:\n"
            f"  url: {json.dumps(self.worker_tcp)}\n"
            f"  tls: {{ca: {json.dumps(str(d / 'ca.pem'))}, "
            f"cert: {json.dumps(str(d / 'client-cert.pem'))}, "
            f"key: {json.dumps(str(d / 'client-key.pem'))}}}\n"
        )
        return path

    def kill_worker(self) -> None:
        """SIGKILL the second engine, as a machine that stops answering."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.pid = None

    def restart_worker(self) -> None:
        """Start the second engine again on its folders; it is back in the swarm when the
        manager says it is ready."""
        self._spawn_engine()
        self._wait_ready()

    def _own_hostname(self) -> None:
        """In the child, before exec: a UTS namespace of its own, so that the second engine
        (and its swarm node) has a hostname of its own rather than the machine's."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWUTS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUTS)")
        socket.sethostname(self.worker_name)

    @property
    def worker_name(self) -> str:
        return f"slabtest-{self.tag}"

    def _swarm(self) -> None:
        self.docker(self.manager_url, "swarm", "init", "--advertise-addr", self.manager_addr,
                    "--listen-addr", f"{self.manager_addr}:2377",
                    "--default-addr-pool", SWARM_POOL)  # fmt: skip
        self.swarm_made = True
        token = self.docker(self.manager_url, "swarm", "join-token", "-q", "worker").stdout.strip()
        self.docker(self.worker_url, "swarm", "join", "--token", token,
                    "--advertise-addr", self.worker_addr, f"{self.manager_addr}:2377")  # fmt: skip
        self.manager_host = self._info(self.manager_url)["Name"]
        self.worker_host = self._info(self.worker_url)["Name"]
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_WAIT
        while True:
            nodes = self.docker(self.manager_url, "node", "ls", "--format", "{{json .}}")
            ready = [json.loads(line) for line in nodes.stdout.splitlines() if line.strip()]
            if len(ready) == 2 and all(n.get("Status") == "Ready" for n in ready):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the swarm's nodes did not become ready: {nodes.stdout}")
            time.sleep(0.3)

    def _info(self, url: str) -> dict[str, str]:
        info = json.loads(self.docker(url, "info", "--format", "{{json .}}").stdout)
        return {"Name": str(info["Name"]), "NodeID": str(info["Swarm"]["NodeID"])}

    def engines_file(self, folder: Path) -> Path:
        """The ``--engines`` file of this swarm: hostname -> URL."""
        path = folder / "engines.yaml"
        path.write_text(
            f"{json.dumps(self.manager_host)}: {json.dumps(self.manager_url)}\n"
            f"{json.dumps(self.worker_host)}: {json.dumps(self.worker_url)}\n"
        )
        return path

    # -- undoing it ------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """Undo everything ``start`` made, whatever step it reached; what could not be undone."""
        problems: list[str] = []

        def attempt(what: str, *argv: str) -> None:
            done = _run(*argv, check=False)
            if done.returncode != 0:
                problems.append(f"{what}: {done.stderr.strip()}")

        if "dockerd" in self.steps:
            attempt("worker leaves", "docker", "-H", self.worker_url, "swarm", "leave", "--force")
        if self.swarm_made:
            attempt("manager leaves", "docker", "-H", self.manager_url, "swarm", "leave", "--force")
            self._remove_swarm_networks(problems)
        if self.pid is not None:
            self._stop_engine(problems)
        if "root" in self.steps:
            self._remove_root(problems)
        if "veth" in self.steps:
            _run("ip", "link", "del", self.veth, check=False)  # gone with the netns too
        if "netns" in self.steps:
            attempt("netns", "ip", "netns", "del", self.netns)
        return problems

    def _remove_swarm_networks(self, problems: list[str]) -> None:
        # Made by the swarm on this engine; once it has left, nothing else uses them. Its
        # ingress goes with the swarm: a leftover one is removed as well.
        for name in ("ingress", "docker_gwbridge"):
            for _ in range(20):
                found = self.docker(self.manager_url, "network", "ls", "-q", "--filter",
                                    f"name=^{name}$", check=False)  # fmt: skip
                if not found.stdout.strip():
                    break
                self.docker(self.manager_url, "network", "rm", name, check=False)
                time.sleep(0.5)
            else:
                problems.append(f"network {name} still on the machine's engine")

    def _stop_engine(self, problems: list[str]) -> None:
        assert self.pid is not None
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                done = self.pid if not Path(f"/proc/{self.pid}").exists() else 0
            if done:
                self.pid = None
                return
            time.sleep(0.2)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.pid = None
        problems.append("the second dockerd needed SIGKILL")

    def _remove_root(self, problems: list[str]) -> None:
        # Its containers' mounts (vfs layers, shm) may outlive it briefly: unmount first.
        mounts = Path("/proc/mounts").read_text().splitlines()
        ours = [m.split()[1] for m in mounts if m.split()[1].startswith(str(self.root))]
        for point in sorted(ours, key=len, reverse=True):
            _run("umount", "-l", point, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.root.exists():
            problems.append(f"folder {self.root} still there")


def needs() -> str | None:
    """Why this machine cannot make the second engine (None: it can)."""
    if os.geteuid() != 0:
        return "needs root for a second Docker engine in a network namespace"
    for tool in ("/usr/sbin/dockerd", shutil.which("nsenter"), shutil.which("docker")):
        if tool is None or not Path(tool).exists():
            return f"needs {tool or 'nsenter and docker'} for a second Docker engine"
    return None
