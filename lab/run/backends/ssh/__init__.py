"""The ssh backend: existing machines reached over SSH (paramiko)."""

from lab.run.backends.ssh.backend import SshBackend

__all__ = ["SshBackend"]
