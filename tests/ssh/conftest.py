"""Fixtures of the ssh tier: real sshd hosts in network namespaces (see hosts.py)."""

from __future__ import annotations

from tests.ssh.hosts import nosudo_user, ssh_hosts, sudo_user, worlds

__all__ = ["nosudo_user", "ssh_hosts", "sudo_user", "worlds"]
