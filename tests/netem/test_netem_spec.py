"""``netem:`` in a topology: values with their units and ranges, each problem located;
a network's netem spread over its nodes' ingress; the qdisc's argument list."""

from __future__ import annotations

import pytest

from lab.errors import TopologyError
from lab.spec.netem import Impairment, Netem, parse_percent, parse_rate, parse_time
from lab.spec.topology import load_topology_text

BASE = """\
name: imp
networks:
  lan:
    subnet: 10.77.1.0/24
{network}
nodes:
  a:
    interfaces: {{lan: 10.77.1.1}}
{node}
  b: {{interfaces: {{lan: 10.77.1.2}}}}
"""


def topo(network: str = "", node: str = "") -> str:
    return BASE.format(network=network, node=node)


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as err:
        load_topology_text(text, "t.yaml")
    return err.value.problems


def test_the_issue_example_is_read_into_base_units() -> None:
    text = topo(
        "    netem: {delay: 50ms, jitter: 10ms, loss: 5%, duplicate: 1%, reorder: 25%,"
        " corrupt: 0.1%, rate: 1mbit, limit: 1000}"
    )
    t = load_topology_text(text)
    want = Netem(50_000, 10_000, 5.0, 1.0, 25.0, 0.1, 1_000_000, 1000)
    assert t.impairments == (
        Impairment("a", "lan", "ingress", want),
        Impairment("b", "lan", "ingress", want),
    )
    assert want.tc_args() == [
        "netem", "limit", "1000", "delay", "50000us", "10000us", "loss", "5%",
        "duplicate", "1%", "reorder", "25%", "corrupt", "0.1%", "rate", "1000000bit",
    ]  # fmt: skip


def test_a_node_interface_overrides_the_network_and_takes_both_directions() -> None:
    text = topo(
        "    netem: {delay: 40ms}",
        "    netem:\n      lan: {ingress: {loss: 10%}, egress: {delay: 1s}}",
    )
    t = load_topology_text(text)
    assert set(t.impairments) == {
        Impairment("a", "lan", "ingress", Netem(loss=10.0)),
        Impairment("a", "lan", "egress", Netem(delay_us=1_000_000)),
        Impairment("b", "lan", "ingress", Netem(delay_us=40_000)),
    }


def test_no_netem_no_impairments() -> None:
    assert load_topology_text(topo()).impairments == ()


@pytest.mark.parametrize(
    ("value", "where", "line"),
    [
        ("{loss: 120%}", "networks.lan.netem.loss: '120%' is outside 0% to 100%", 5),
        ("{delay: -1ms}", "networks.lan.netem.delay: '-1ms' is negative", 5),
        ("{delay: 5 fortnights}", "networks.lan.netem.delay: '5 fortnights' unknown unit", 5),
        ("{delay: 50}", "networks.lan.netem.delay: '50' needs a unit", 5),
        ("{rate: 1mbyte}", "networks.lan.netem.rate: '1mbyte' unknown unit", 5),
        ("{loss: 5}", "networks.lan.netem.loss: '5' is not a percentage", 5),
        ("{limit: 0}", "networks.lan.netem.limit:", 5),
        ("{jitter: 1ms}", "networks.lan.netem.jitter: 'jitter' needs 'delay'", 5),
        ("{lose: 5%}", "networks.lan.netem.lose: unknown key 'lose'", 5),
    ],
)
def test_bad_values_are_located(value: str, where: str, line: int) -> None:
    found = problems(topo(f"    netem: {value}"))
    assert len(found) == 1, found
    assert found[0].startswith(f"t.yaml:{line}: {where}"), found


def test_an_interface_the_node_does_not_have_is_located() -> None:
    found = problems(topo(node="    netem:\n      wan: {egress: {delay: 1ms}}"))
    assert found == [
        "t.yaml:10: nodes.a.netem.wan: the node has no interface on 'wan'; its networks: lan"
    ]


def test_a_direction_that_does_not_exist_is_located() -> None:
    found = problems(topo(node="    netem:\n      lan: {inbound: {delay: 1ms}}"))
    assert len(found) == 1 and found[0].startswith("t.yaml:10: nodes.a.netem.lan.inbound:")


@pytest.mark.parametrize(
    ("text", "us"), [("50ms", 50_000), ("1.5s", 1_500_000), ("200us", 200), ("0ms", 0)]
)
def test_durations(text: str, us: int) -> None:
    assert parse_time(text) == (us, "")


def test_rates_and_percentages() -> None:
    assert parse_rate("1mbit")[0] == 1_000_000
    assert parse_rate("10kbps")[0] == 80_000
    assert parse_rate("1bit")[0] is None
    assert parse_percent("0.1%")[0] == 0.1
    assert parse_percent("100.5%")[0] is None
