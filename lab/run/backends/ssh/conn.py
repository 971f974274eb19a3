"""The ssh backend's connection layer: connect with verified host keys, run a command
line, copy files with SFTP. Nothing here knows about topologies or runs.

Host keys are checked against a known_hosts file: an unknown key is refused unless
``accept_new`` (then it is recorded, as OpenSSH's ``StrictHostKeyChecking=accept-new``);
a changed key is always refused. Passwords are never asked for or stored: keys come from
a file (refused when group or others may read it) or an SSH agent.

A host that stops answering is noticed within about ``KEEPALIVE + USER_TIMEOUT`` seconds:
keepalives keep data in flight and the kernel drops a connection whose data is not
acknowledged in time. The host is then *lost*: every later operation on it fails at once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import select
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko

from lab.errors import BackendError
from lab.spec.model import SshTarget

CONNECT_TIMEOUT = 10.0  # seconds to connect, exchange keys and authenticate
CHANNEL_TIMEOUT = 10.0  # seconds to open a channel on a connection
KEEPALIVE = 1  # seconds between keepalives on an idle connection
USER_TIMEOUT_MS = 5000  # unacknowledged data for this long ends the connection
CHANNELS = 8  # channels in flight per connection (OpenSSH's MaxSessions defaults to 10)

_KNOWN_HOSTS_LOCK = threading.Lock()


class HostLost(BackendError):
    """The connection to a host broke, or the host stopped answering."""


def default_known_hosts() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: ``SHA256:`` and the unpadded base64 of the key blob's digest."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def check_key_file(path: Path) -> str | None:
    """Why a private key file cannot be used, or None."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"key file {path}: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return f"key file {path} is not a regular file"
    if st.st_mode & 0o077:
        return (
            f"key file {path} is readable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}` (OpenSSH refuses it too)"
        )
    return None


class _Refuse(paramiko.MissingHostKeyPolicy):
    """Unknown host keys: refuse with what to do, or record them (``accept_new``)."""

    def __init__(self, known_hosts: Path, accept_new: bool) -> None:
        self.known_hosts = known_hosts
        self.accept_new = accept_new

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        fp = fingerprint(key)
        if not self.accept_new:
            raise BackendError(
                f"host key of {hostname} is unknown ({key.get_name()} {fp}; not in "
                f"{self.known_hosts}). Check that fingerprint with the host's administrator "
                "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host), then add "
                "the key to that file, or run again with --accept-new-host-keys to record it"
            )
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _KNOWN_HOSTS_LOCK:
            self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.known_hosts, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)


@dataclass(frozen=True)
class Options:
    """How to connect: which known_hosts file, and whether to record unknown keys."""

    known_hosts: Path
    accept_new: bool = False


def _tcp(host: str, port: int) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise BackendError(f"cannot reach {host}:{port}: {exc.strerror or exc}") from exc
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    with contextlib.suppress(AttributeError, OSError):  # Linux only
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
    return sock


def _client(
    target: SshTarget, sock: socket.socket | paramiko.Channel, opts: Options
) -> paramiko.SSHClient:
    client = _new_client(opts)
    key = str(Path(target.key)) if target.key else None
    problem = check_key_file(Path(key)) if key is not None else _agent_problem(target)
    if problem:
        raise BackendError(problem)
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.user,
            key_filename=key,
            allow_agent=target.agent,
            look_for_keys=key is None and not target.agent,
            sock=sock,
            timeout=CONNECT_TIMEOUT,
            banner_timeout=CONNECT_TIMEOUT,
            auth_timeout=CONNECT_TIMEOUT,
            channel_timeout=CHANNEL_TIMEOUT,
        )
    except BackendError:
        client.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        raise _connect_error(exc, target, opts, key) from None
    transport = client.get_transport()
    assert transport is not None
    transport.set_keepalive(KEEPALIVE)
    return client


def _new_client(opts: Options) -> paramiko.SSHClient:
    """A client that knows the hosts of ``opts.known_hosts`` and refuses unknown ones
    (unless ``accept_new``)."""
    client = paramiko.SSHClient()
    if opts.known_hosts.exists():
        try:
            client.load_host_keys(str(opts.known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise BackendError(f"cannot read known hosts {opts.known_hosts}: {exc}") from exc
    client.set_missing_host_key_policy(_Refuse(opts.known_hosts, opts.accept_new))
    return client


def _connect_error(
    exc: Exception, target: SshTarget, opts: Options, key: str | None
) -> BackendError:
    """Why connecting failed, in one line that says what to do about it."""
    if isinstance(exc, paramiko.BadHostKeyException):
        name = known_hosts_name(target.host, target.port)
        return BackendError(
            f"host key of {name} has CHANGED: it offers {exc.key.get_name()} "
            f"{fingerprint(exc.key)}, {opts.known_hosts} has {fingerprint(exc.expected_key)}. "
            "The host may have been reinstalled, or someone is in between. If the change is "
            f"expected, remove the old key (`ssh-keygen -R '{name}' -f {opts.known_hosts}`)"
        )
    # PasswordRequiredException is an AuthenticationException: it goes first.
    if isinstance(exc, paramiko.PasswordRequiredException):
        return BackendError(
            f"key file {key} is protected by a passphrase; add it to an ssh-agent and set "
            "`agent: true` (the lab never asks for or stores passwords)"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        how = f"key {key}" if key else "the default keys"
        how += " or the agent's keys" if target.agent else ""
        return BackendError(
            f"authentication as {target.user!r} failed with {how}: the host does not accept "
            f"it; add the public key to ~{target.user}/.ssh/authorized_keys on the host"
        )
    return BackendError(f"ssh to {target.host}:{target.port} failed: {exc}")


def _agent_problem(target: SshTarget) -> str | None:
    """Why an agent-only target has no key to offer, or None (paramiko would only say
    "No authentication methods available")."""
    if not target.agent:
        return None
    where = os.environ.get("SSH_AUTH_SOCK")
    if not where:
        return "`agent: true` but no ssh-agent is running here (SSH_AUTH_SOCK is not set)"
    agent = paramiko.Agent()
    try:
        if not agent.get_keys():
            return (
                f"the ssh-agent at {where} holds no keys: add one with `ssh-add KEYFILE`, or "
                "give the node a `key`"
            )
    finally:
        agent.close()
    return None


class Host:
    """One connection to one host (through a jump host if the target names one)."""

    def __init__(self, target: SshTarget, opts: Options) -> None:
        self.target = target
        self.lost: str | None = None
        self._slots = threading.BoundedSemaphore(CHANNELS)
        self._jump: paramiko.SSHClient | None = None
        # One SFTP session kept open for small reads (a process's status): a request on it
        # is one round trip, where a command starts the user's login shell on the host.
        self._reader: paramiko.SFTPClient | None = None
        self._reader_lock = threading.Lock()
        if target.jump is not None:
            self._jump = _client(target.jump, _tcp(target.jump.host, target.jump.port), opts)
            jt = self._jump.get_transport()
            assert jt is not None
            try:
                sock: socket.socket | paramiko.Channel = jt.open_channel(
                    "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0),
                    timeout=CONNECT_TIMEOUT,
                )  # fmt: skip
            except (paramiko.SSHException, OSError, EOFError) as exc:
                self._jump.close()
                raise BackendError(
                    f"jump host {target.jump} cannot reach {target.host}:{target.port}: {exc}"
                ) from None
        else:
            sock = _tcp(target.host, target.port)
        try:
            self._client = _client(target, sock, opts)
        except BaseException:
            if self._jump is not None:
                self._jump.close()
            raise

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport()
        if self.lost is None and (transport is None or not transport.is_active()):
            self.lost = "the connection dropped"
        if self.lost is not None or transport is None:
            raise HostLost(f"host {self.target} is unreachable ({self.lost})")
        return transport

    def _mark_lost(self, why: object) -> BackendError:
        """The error for a failed operation: the host is lost if the connection is gone,
        else the operation alone failed (a refused channel or subsystem)."""
        transport = self._client.get_transport()
        if self.lost is None and transport is not None and transport.is_active():
            return BackendError(f"host {self.target}: {why or type(why).__name__}")
        if self.lost is None:
            detail = str(why) if isinstance(why, str) else f"{type(why).__name__}: {why}"
            self.lost = "the connection dropped" if isinstance(why, EOFError) else detail
        return HostLost(f"host {self.target} is unreachable ({self.lost})")

    def execute(
        self, command: str, *, timeout: float, input: bytes | None = None
    ) -> tuple[int, bytes, bytes] | None:
        """Run a command line; (exit status, stdout, stderr), or None when ``timeout``
        passed first (the command may still be running: the caller stops it)."""
        with self._slots:
            try:
                chan = self._transport().open_session(timeout=CHANNEL_TIMEOUT)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self._mark_lost(exc) from None
            try:
                chan.exec_command(command)
                if input:
                    chan.sendall(input)
                chan.shutdown_write()
                streams = _read_all(chan, time.monotonic() + timeout)
                if streams is None:
                    return None
                code = chan.recv_exit_status()
                if code == -1:  # closed without a status: the connection went
                    raise self._mark_lost("the connection dropped")
                return code, streams[0], streams[1]
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self._mark_lost(exc) from None
            finally:
                chan.close()

    def open_session(self) -> paramiko.Channel:
        """A new session channel, for a caller that drives it itself (``lab exec``)."""
        try:
            return self._transport().open_session(timeout=CHANNEL_TIMEOUT)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._mark_lost(exc) from None

    @contextlib.contextmanager
    def sftp(self) -> Iterator[paramiko.SFTPClient]:
        with self._slots:
            try:
                client = paramiko.SFTPClient.from_transport(
                    self._transport(), window_size=None, max_packet_size=None
                )
            except (paramiko.SSHException, OSError, EOFError) as exc:
                error = self._mark_lost(exc)
                if not isinstance(error, HostLost):
                    error = BackendError(
                        f"host {self.target} offers no SFTP ({exc}): enable the sftp "
                        "Subsystem in its sshd_config"
                    )
                raise error from None
            assert client is not None
            try:
                client.get_channel().settimeout(CONNECT_TIMEOUT * 3)  # type: ignore[union-attr]
                yield client
            except (OSError, EOFError, paramiko.SSHException) as exc:
                # The connection gone (lost), or one file refused: either way a BackendError.
                raise self._mark_lost(exc) from None
            finally:
                client.close()

    def read_file(self, path: str, limit: int = 1 << 16) -> bytes | None:
        """The first ``limit`` bytes of a file on the host, or None if it cannot be read
        (absent, or gone meanwhile). Works for ``/proc`` files too (they are read until
        EOF whatever their size says)."""
        with self._reader_lock:
            try:
                if self._reader is None:
                    self._transport()
                    self._reader = self._client.open_sftp()
                    self._reader.get_channel().settimeout(CONNECT_TIMEOUT * 3)  # type: ignore[union-attr]
                with self._reader.open(path, "rb") as f:
                    return bytes(f.read(limit))
            except (TimeoutError, EOFError, OSError, paramiko.SSHException) as exc:
                error = self._mark_lost(exc)
                refused = isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
                if refused and not isinstance(error, HostLost):
                    # Missing, or gone while read (a /proc file of a process that ended).
                    # A timeout is no answer: it must not read as "the file is gone".
                    return None
                self._reader = None
                raise error from None

    def close(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader.close()
        self._client.close()
        if self._jump is not None:
            self._jump.close()


def _read_all(chan: paramiko.Channel, deadline: float) -> tuple[bytes, bytes] | None:
    """Read a channel's stdout and stderr until its end; None once ``deadline`` passes."""
    out, err = bytearray(), bytearray()
    while True:
        while chan.recv_ready():
            out += chan.recv(1 << 16)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(1 << 16)
        if (chan.eof_received or chan.closed) and not (
            chan.recv_ready() or chan.recv_stderr_ready()
        ):
            return bytes(out), bytes(err)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        # The channel's fileno is a pipe set when data, EOF or close arrive.
        select.select([chan], [], [], min(remaining, 1.0))
