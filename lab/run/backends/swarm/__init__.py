"""The swarm backend: a lab's nodes on the engines of an existing Docker Swarm.

It is the docker backend (``lab.run.backends.docker``) with two differences: each node's
container runs on one engine of the swarm (the node's ``engine:``, else spread so that a
scenario's server and clients are on different engines), and the networks are attachable
overlay networks with the topology's own subnets and the nodes' own addresses, made
through a manager of the swarm. The lab never joins, leaves or initialises a swarm.

Engines are reached at the URLs of an ``--engines`` file (``enginesfile``); without one,
the engine of ``DOCKER_HOST`` must be a manager and runs every node. Every object carries
the docker backend's labels with ``socket-lab.backend=swarm``; ``down`` and ``clean``
remove them on every engine of the file.
"""

from __future__ import annotations

from lab.run.backends.swarm.backend import ENGINE_LABEL, SwarmBackend
from lab.run.backends.swarm.enginesfile import EnginesFile, load_engines

__all__ = ["ENGINE_LABEL", "EnginesFile", "SwarmBackend", "load_engines"]
