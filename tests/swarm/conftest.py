"""Fixtures of the swarm tier: a real two-engine Docker Swarm (see twoengines.py)."""

from __future__ import annotations

from tests.swarm.twoengines import swarm_backend, two_engines

__all__ = ["swarm_backend", "two_engines"]
