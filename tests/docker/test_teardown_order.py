"""The order of a docker teardown, on a fake engine API: every endpoint leaves its network
alone (never two disconnects at once), and before any container is removed. Endpoints
leaving one network at once were seen to leave the engine counting one that no longer
existed (CI, run 4ce18d), and that network could not be removed until the engine restarted."""

from __future__ import annotations

import threading
import time
from typing import Any

from lab.run.backends.docker import teardown


class FakeApi:
    def __init__(self, containers: list[dict[str, Any]]) -> None:
        self.listed = containers
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_at_once = 0
        self.events: list[tuple[str, str]] = []

    def containers(self, **_: Any) -> list[dict[str, Any]]:
        return self.listed

    def networks(self, **_: Any) -> list[dict[str, Any]]:
        return []

    def disconnect_container_from_network(self, cid: str, net: str, force: bool) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)
            self.events.append(("disconnect", cid))
        time.sleep(0.002)  # long enough for a parallel caller to overlap
        with self.lock:
            self.in_flight -= 1

    def remove_container(self, cid: str, force: bool, v: bool) -> None:
        with self.lock:
            self.events.append(("remove", cid))


class FakeClient:
    def __init__(self, api: FakeApi) -> None:
        self.api = api


def test_endpoints_leave_one_at_a_time_before_any_container_goes() -> None:
    containers = [
        {"Id": f"c{i}", "Names": [f"/slab-abcdef-n{i}"],
         "NetworkSettings": {"Networks": {"slab-abcdef-a": {}, "slab-abcdef-b": {}}}}
        for i in range(12)
    ]  # fmt: skip
    api = FakeApi(containers)
    removed = teardown.remove_labelled(FakeClient(api), {"socket-lab.run": "abcdef"})  # type: ignore[arg-type]
    assert len(removed) == 12
    assert api.most_at_once == 1
    kinds = [kind for kind, _ in api.events]
    assert kinds == ["disconnect"] * 24 + ["remove"] * 12


class LeavingAgent:
    """An agent whose close ends a command waiting on it, whose thread then drops the
    agent from the backend's map, as ``DockerBackend.run`` does on AgentGone."""

    def __init__(self, backend: Any, node: str) -> None:
        self.backend, self.node, self.closed = backend, node, False

    def close(self) -> None:
        self.closed = True
        self.backend._agents.pop(self.node, None)


def test_down_closes_every_agent_while_their_waiters_leave_and_still_removes(
    monkeypatch: Any,
) -> None:
    """A SIGTERM mid-snapshot left a run's containers behind: down() iterated the agents
    while the waiting commands' threads removed theirs ('dictionary changed size during
    iteration', CI of 7b03a98), and never reached the removal."""
    from lab.run.backends.docker.backend import DockerBackend

    removed: list[dict[str, str]] = []
    monkeypatch.setattr(
        teardown, "remove_labelled", lambda _client, match, **_: removed.append(dict(match))
    )
    backend = DockerBackend("abcdef")
    backend._docker = FakeClient(FakeApi([]))  # type: ignore[assignment]
    agents = {n: LeavingAgent(backend, n) for n in ("server", "client1", "client2")}
    backend._agents = dict(agents)  # type: ignore[arg-type]
    backend.down()
    assert all(a.closed for a in agents.values())
    assert removed == [{"socket-lab.run": "abcdef"}]
