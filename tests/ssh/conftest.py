"""Fixtures of the ssh tier: real sshd hosts in network namespaces (see hosts.py)."""

from __future__ import annotations

from tests.ssh.hosts import ssh_hosts, worlds

__all__ = ["ssh_hosts", "worlds"]
