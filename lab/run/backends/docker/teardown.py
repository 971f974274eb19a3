"""Removing a run's containers and networks, and listing the runs, by their labels only."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

import docker
import docker.errors

from lab.errors import BackendError
from lab.run.backends.docker.engine import (
    BACKEND_LABEL,
    PARALLEL,
    RUN_LABEL,
    TOPOLOGY_LABEL,
    engine,
)


def remove_network(api: docker.APIClient, net_id: str, tries: int = 5) -> None:
    """Remove a network. After many containers go at once the engine can keep endpoints
    of containers that no longer exist ("has active endpoints"): force-disconnect what the
    network still lists, then try again."""
    for attempt in range(tries):
        try:
            api.remove_network(net_id)
            return
        except docker.errors.APIError as exc:
            said = str(exc.explanation or exc)
            if "not found" in said:
                # Gone meanwhile: a swarm's manager says so with a 500, not a 404.
                return
            if "active endpoints" not in said or attempt == tries - 1:
                raise
        for endpoint in api.inspect_network(net_id).get("Containers") or {}:
            with suppress(docker.errors.APIError):
                api.disconnect_container_from_network(endpoint, net_id, force=True)
        time.sleep(0.2 * (attempt + 1))


def remove_labelled(
    client: docker.DockerClient,
    match: Mapping[str, str],
    backend: str = "docker",
    networks: bool = True,
) -> list[str]:
    """Force-remove the containers, then (unless not ``networks``: a swarm's worker, which
    cannot remove them) the networks, carrying all of ``match``'s labels and ``backend``'s."""
    labels = [f"{BACKEND_LABEL}={backend}", *(f"{k}={v}" for k, v in match.items())]
    api = client.api
    with engine("listing the lab's containers"):
        containers = api.containers(all=True, filters={"label": labels})
    leave_networks(api, containers)
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = [pool.submit(_remove_container, api, c) for c in containers]
        removed = [item for f in futures if (item := f.result()) is not None]
    if not networks:
        return removed
    with engine("listing the lab's networks"):
        found = api.networks(filters={"label": labels})
    return removed + _remove_networks(api, found)


def leave_networks(api: docker.APIClient, containers: list[Mapping[str, Any]]) -> None:
    """Disconnect every container from its networks, one at a time. Endpoints leaving one
    network at once (force-removed attached containers, or parallel disconnects: both
    were seen) can leave the engine counting an endpoint that no longer exists; the
    network then cannot be removed until the engine restarts."""
    for c in containers:
        for net in (c.get("NetworkSettings") or {}).get("Networks") or {}:
            with suppress(docker.errors.APIError):
                api.disconnect_container_from_network(c["Id"], net, force=True)


def _remove_container(api: docker.APIClient, c: Mapping[str, Any]) -> str | None:
    name = str(c["Names"][0]).lstrip("/")
    with engine(f"removing container {name}"), suppress(docker.errors.NotFound):
        api.remove_container(c["Id"], force=True, v=True)
        return f"container {name}"
    return None


def _remove_networks(api: docker.APIClient, networks: list[Mapping[str, Any]]) -> list[str]:
    removed: list[str] = []
    stuck: list[str] = []
    # A swarm's manager can list one overlay network twice (the swarm's and its own).
    networks = list({n["Id"]: n for n in networks}.values())
    for n in networks:
        try:
            with engine(f"removing network {n['Name']}"), suppress(docker.errors.NotFound):
                remove_network(api, n["Id"])
                removed.append(f"network {n['Name']}")
        except BackendError as exc:  # try every network before reporting
            stuck.append(str(exc))
    if stuck:
        raise BackendError(
            "; ".join(stuck) + " (the engine still counts endpoints of removed containers;"
            " restarting the Docker engine clears it)"
        )
    return removed


def describe_runs(client: docker.DockerClient) -> Mapping[str, str]:
    """Run id -> one line on its topology, containers and networks: every docker run found."""
    labels = [f"{BACKEND_LABEL}=docker"]
    with engine("listing the lab's objects"):
        containers = client.api.containers(all=True, filters={"label": labels})
        networks = client.api.networks(filters={"label": labels})
    runs: dict[str, tuple[str, int, int]] = {}
    for c in containers:
        rid, topo = c["Labels"].get(RUN_LABEL, "?"), c["Labels"].get(TOPOLOGY_LABEL, "?")
        _, nc, nn = runs.get(rid, (topo, 0, 0))
        runs[rid] = (topo, nc + 1, nn)
    for n in networks:
        labels_ = n.get("Labels") or {}
        rid, topo = labels_.get(RUN_LABEL, "?"), labels_.get(TOPOLOGY_LABEL, "?")
        _, nc, nn = runs.get(rid, (topo, 0, 0))
        runs[rid] = (topo, nc, nn + 1)
    return {
        rid: f"topology {topo}: {nc} containers, {nn} networks"
        for rid, (topo, nc, nn) in sorted(runs.items())
    }
