"""The large topologies the scale benchmark builds (tests/benchmarks/bench_scale.py) are
valid: a 250-client lab loads, and 1,000 hosts fit the netns backend's names. One node
past the limit is refused (see bad/too-many-nodes.yaml for the message)."""

from __future__ import annotations

import pytest

from lab.errors import TopologyError
from lab.run.backends.netns import NetnsBackend
from lab.spec.model import Topology
from lab.spec.topology import MAX_NODES, load_topology_text
from tests.benchmarks.bench_scale import one_lan, routed, scale_topology


def test_the_250_client_lab_loads() -> None:
    topo = load_topology_text(scale_topology(250))
    assert len(topo.nodes) == 251
    clients = [node for sc in topo.scenarios for node in sc.clients]
    assert len(clients) == len(set(clients)) == 250


@pytest.mark.parametrize("make", [one_lan, routed])
def test_a_thousand_hosts_fit_the_netns_names(make: object) -> None:
    topo = make(MAX_NODES)  # type: ignore[operator]
    assert isinstance(topo, Topology) and len(topo.nodes) == MAX_NODES
    assert NetnsBackend.topology_problems(topo) == []


def test_one_node_more_is_refused() -> None:
    with pytest.raises(TopologyError, match=f"at most {MAX_NODES}"):
        load_topology_text(scale_topology(MAX_NODES))
