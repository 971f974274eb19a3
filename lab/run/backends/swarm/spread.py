"""A run's objects across the engines of a file: removing them, finding their owner and
listing the runs. An engine that does not answer is named; the others are still served."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from lab.errors import BackendError, UsageError
from lab.run.backends.base import Owner
from lab.run.backends.docker import teardown
from lab.run.backends.docker.engine import (
    BACKEND_LABEL,
    ENGINE_ERRORS,
    OWNER_LABEL,
    RUN_LABEL,
    TOPOLOGY_LABEL,
    engine,
    owner_of_label,
)
from lab.run.backends.swarm.cluster import Cluster, Engine, client_for
from lab.run.backends.swarm.enginesfile import EnginesFile, EngineSpec

NAME = "swarm"
NETWORKS_GONE = 20.0  # seconds a removed overlay network may stay listed
LABEL = f"{BACKEND_LABEL}={NAME}"


def _open_any(spec: EngineSpec) -> Engine:
    """An engine as it is now, in a swarm or not (what is left of a run is removed either way)."""
    client = client_for(spec)
    try:
        with engine(f"asking the engine of {spec.name or 'DOCKER_HOST'} at {spec.url}"):
            info = client.info()
    except BaseException:
        with suppress(*ENGINE_ERRORS, OSError):
            client.close()
        raise
    return Engine.answered(spec, client, info)


def open_lenient(file: EnginesFile) -> tuple[Cluster, list[str]]:
    """The engines of ``file`` that answer, and one line on each that does not."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(spec, pool.submit(_open_any, spec)) for spec in file.engines]
    opened, failed = [], []
    for spec, f in futures:
        try:
            opened.append(f.result())
        except (BackendError, UsageError) as exc:
            failed.append(f"engine {spec.name or 'DOCKER_HOST'} ({spec.url}) unreachable: {exc}")
    return Cluster(file, tuple(opened)), failed


def remove_run(cluster: Cluster, match: Mapping[str, str]) -> list[str]:
    """Remove the containers carrying ``match`` on every engine, then (through a manager)
    the networks. Every engine is tried before an engine's error is raised, naming it."""

    def containers(e: Engine) -> list[str]:
        with engine(f"on {e.where()}"):
            return [f"{item} on {e.name}" for item in _remove(e, match, networks=False)]

    removed: list[str] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(e, pool.submit(containers, e)) for e in cluster]
    for e, f in futures:
        try:
            removed += f.result()
        except BackendError as exc:
            errors.append(f"{e.where()}: {exc}")
    managers = [e for e in cluster if e.manager]
    if managers:
        try:
            removed += _remove_networks(managers[0], match)
            errors += _networks_gone_everywhere(cluster, match)
        except BackendError as exc:
            errors.append(f"{managers[0].where()}: {_network_hint(exc, cluster, match)}")
    if errors:
        raise BackendError("; ".join(errors))
    return removed


def _network_hint(exc: BackendError, cluster: Cluster, match: Mapping[str, str]) -> str:
    """A network held by a task is still attached on an engine (one that stopped
    answering, say): it can go once that engine is back, not by restarting this one."""
    if "in use by task" not in str(exc):
        return str(exc)
    run = f" --run-id {match[RUN_LABEL]}" if RUN_LABEL in match else ""
    return (
        f"{str(exc).split(' (the engine still counts')[0]} (still attached on another "
        f"engine of the swarm: once every engine answers, `lab clean --engines "
        f"{cluster.file.path}{run}` removes it)"
    )


def _remove_networks(manager: Engine, match: Mapping[str, str]) -> list[str]:
    """The run's networks, removed through ``manager`` until it lists none: a removed
    overlay network can stay listed for a moment, and then be removed once more."""
    removed: list[str] = []
    labels = [LABEL, *(f"{k}={v}" for k, v in match.items())]
    deadline = time.monotonic() + NETWORKS_GONE
    while True:
        removed += [r for r in _remove(manager, match, networks=True) if r not in removed]
        with engine(f"listing the lab's networks on {manager.where()}"):
            if not manager.api.networks(filters={"label": labels}):
                return removed
        if time.monotonic() > deadline:
            raise BackendError("the run's overlay networks are still listed")
        time.sleep(0.3)


def _networks_gone_everywhere(cluster: Cluster, match: Mapping[str, str]) -> list[str]:
    """Wait until no engine lists the run's networks: a worker drops its copy of a removed
    overlay network only once the manager's update reaches it, a moment later."""
    labels = [LABEL, *(f"{k}={v}" for k, v in match.items())]
    deadline = time.monotonic() + NETWORKS_GONE

    def listed(e: Engine) -> bool:
        try:
            return bool(e.api.networks(filters={"label": labels}))
        except (*ENGINE_ERRORS, OSError):
            return False  # an engine that does not answer is named by its containers' removal

    waiting = [e for e in cluster if not e.manager]
    while waiting := [e for e in waiting if listed(e)]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    return [f"{e.where()}: the run's overlay networks are still listed there" for e in waiting]


def _remove(e: Engine, match: Mapping[str, str], *, networks: bool) -> list[str]:
    return teardown.remove_labelled(e.client, match, backend=NAME, networks=networks)


def owner(cluster: Cluster, run_id: str) -> Owner | None:
    match = {"label": f"{RUN_LABEL}={run_id}"}
    for e in cluster:
        with engine(f"listing the run's objects on {e.where()}"):
            found = e.api.containers(all=True, filters=match) + e.api.networks(filters=match)
        for obj in found:
            label = (obj.get("Labels") or {}).get(OWNER_LABEL)
            if label:
                return owner_of_label(label)
    return None


def describe_runs(cluster: Cluster) -> Mapping[str, str]:
    """Run id -> its topology, containers per engine and networks: every swarm run found."""
    runs: dict[str, dict[str, object]] = {}

    def entry(labels: Mapping[str, str]) -> dict[str, object]:
        rid = labels.get(RUN_LABEL, "?")
        return runs.setdefault(
            rid, {"topology": labels.get(TOPOLOGY_LABEL, "?"), "engines": {}, "networks": 0}
        )

    for e in cluster:
        with engine(f"listing the lab's objects on {e.where()}"):
            containers = e.api.containers(all=True, filters={"label": [LABEL]})
            networks = e.api.networks(filters={"label": [LABEL]}) if e.manager else []
        for c in containers:
            engines = entry(c.get("Labels") or {})["engines"]
            assert isinstance(engines, dict)
            engines[e.name] = engines.get(e.name, 0) + 1
        for n in networks:
            run = entry(n.get("Labels") or {})
            run["networks"] = int(str(run["networks"])) + 1
    out = {}
    for rid, run in sorted(runs.items()):
        engines = run["engines"]
        assert isinstance(engines, dict)
        where = ", ".join(f"{count} on {name}" for name, count in sorted(engines.items()))
        out[rid] = (
            f"topology {run['topology']}: containers {where or 'none'}, "
            f"{run['networks']} networks (swarm)"
        )
    return out
