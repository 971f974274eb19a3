"""Property-style tests of the pure checks: many seeded random cases against a plainly
written reference (no extra dependency; each seed is fixed so a failure reproduces)."""

from __future__ import annotations

import random
import string
from ipaddress import IPv4Address, IPv4Network

import pytest

from lab.errors import TopologyError
from lab.spec.topology import (
    FILTER_CHARS,
    find_overlaps,
    is_valid_name,
    load_topology_text,
    overlaps,
    render_path,
    subnet_problem,
    unsafe_filter_chars,
)

SEEDS = range(20)


def random_subnet(rng: random.Random, lo: int = 22, hi: int = 30) -> IPv4Network:
    """A random block in a small space (10.77.0.0/20) so that overlaps are common."""
    prefix = rng.randint(lo, hi)
    base = int(IPv4Address("10.77.0.0")) + rng.randrange(1 << 12)
    return IPv4Network((base >> (32 - prefix) << (32 - prefix), prefix))


@pytest.mark.parametrize("seed", SEEDS)
def test_overlaps_agrees_with_shared_addresses(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        a, b = random_subnet(rng), random_subnet(rng)
        shared = set(a) & set(b)  # the definition, by brute force over every address
        assert overlaps(a, b) == bool(shared) == overlaps(b, a)


@pytest.mark.parametrize("seed", SEEDS)
def test_find_overlaps_names_the_first_earlier_overlapping_subnet(seed: int) -> None:
    rng = random.Random(seed)
    subnets = [random_subnet(rng, 20, 28) for _ in range(rng.randint(0, 12))]
    found = dict((j, i) for i, j in find_overlaps(subnets))
    for j, b in enumerate(subnets):
        earlier = [i for i in range(j) if set(subnets[i]) & set(b)]
        assert found.get(j) == (earlier[0] if earlier else None)


def reference_name_ok(text: str) -> bool:
    allowed = set(string.ascii_lowercase + string.digits + "-")
    return (
        1 <= len(text) <= 24
        and text[0] in string.ascii_lowercase
        and all(c in allowed for c in text)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_is_valid_name_matches_the_rule(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-_ ;$`'\"/\n.|&()é"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.5:  # make valid names common too
            text = "".join(c for c in text.lower() if c in string.ascii_lowercase + "-")
        assert is_valid_name(text) == reference_name_ok(text), repr(text)


@pytest.mark.parametrize(
    "text",
    ["a;touch /tmp/pwned", "a b", "$(id)", "`id`", "a\n", "A", "1a", "-a", "a" * 25, "", "é"],
)
def test_hostile_names_are_refused(text: str) -> None:
    assert not is_valid_name(text)


@pytest.mark.parametrize("seed", SEEDS)
def test_unsafe_filter_chars_lists_each_bad_character_once_in_order(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "tcp or udp port 9999 and host 10.77.1.10 [13] & 2 != 0" + ";$`'\"\\\n\t#{}"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
    bad = unsafe_filter_chars(text)
    assert bad == list(dict.fromkeys(c for c in text if c not in FILTER_CHARS))
    assert not set(bad) & FILTER_CHARS
    assert all(c in FILTER_CHARS for c in text if c not in bad)


@pytest.mark.parametrize("seed", SEEDS)
def test_subnet_problem_accepts_private_networks_and_refuses_host_bits(seed: int) -> None:
    rng = random.Random(seed)
    for base in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
        space = IPv4Network(base)
        prefix = rng.randint(space.prefixlen, 30)
        offset = rng.randrange(space.num_addresses) >> (32 - prefix) << (32 - prefix)
        net = IPv4Network((int(space.network_address) + offset, prefix))
        assert subnet_problem(str(net)) is None
        inside = net.network_address + rng.randrange(1, net.num_addresses)
        problem = subnet_problem(f"{inside}/{prefix}")
        assert problem is not None and "host bits" in problem and str(net) in problem


@pytest.mark.parametrize("prefix", [0, 1, 7, 31, 32])
def test_subnet_problem_refuses_prefixes_outside_8_to_30(prefix: int) -> None:
    net = IPv4Network(("10.0.0.0", prefix), strict=False)
    problem = subnet_problem(str(net))
    assert problem is not None


def test_render_path_quotes_only_odd_keys() -> None:
    assert render_path(("nodes", "client1", "interfaces", "lan")) == "nodes.client1.interfaces.lan"
    assert render_path(("scenarios", 2, "expect")) == "scenarios[2].expect"
    assert render_path(("nodes", "a;b c")) == 'nodes["a;b c"]'
    assert render_path(()) == "(document)"


def random_topology(rng: random.Random) -> tuple[str, list[tuple[str, IPv4Network, list[str]]]]:
    """A valid file: a few networks, nodes with addresses in them, and the expected model."""
    nets: list[tuple[str, IPv4Network, list[str]]] = []
    lines = ["networks:"]
    for i in range(rng.randint(1, 4)):
        subnet = IPv4Network((f"10.{i}.{rng.randrange(256)}.0", 24))
        nets.append((f"n{i}", subnet, []))
        lines.append(f"  n{i}: {{subnet: {subnet}}}")
    lines.append("nodes:")
    hosts = {name: list(subnet.hosts()) for name, subnet, _ in nets}
    for k in range(rng.randint(1, 30)):
        attached = rng.sample(nets, rng.randint(1, len(nets)))
        ifaces = []
        for name, _, members in attached:
            addr = hosts[name].pop(rng.randrange(len(hosts[name])))
            members.append(f"h{k}")
            ifaces.append(f"{name}: {addr}")
        lines.append(f"  h{k}: {{interfaces: {{{', '.join(ifaces)}}}}}")
    return "\n".join(lines) + "\n", nets


@pytest.mark.parametrize("seed", SEEDS)
def test_random_valid_topology_loads_as_written(seed: int) -> None:
    rng = random.Random(seed)
    text, nets = random_topology(rng)
    t = load_topology_text(text, "random.yaml")
    assert [(n.name, n.subnet) for n in t.networks] == [(n, s) for n, s, _ in nets]
    for name, subnet, members in nets:
        on_net = [n.name for n in t.nodes if name in n.networks]
        assert on_net == members
        assert all(n.address_on(name) in subnet for n in t.nodes if name in n.networks)


@pytest.mark.parametrize("seed", SEEDS)
def test_one_address_moved_out_of_its_subnet_is_exactly_one_problem_at_its_line(
    seed: int,
) -> None:
    rng = random.Random(seed)
    text, _ = random_topology(rng)
    lines = text.splitlines()
    node_lines = [i for i, line in enumerate(lines) if line.startswith("  h")]
    victim = rng.choice(node_lines)
    # The first interface's third octet is bumped past 255-range collisions: 10.I.X.H -> 10.I.X+1.H
    head, _, rest = lines[victim].partition("{interfaces: {")
    net, _, tail = rest.partition(": ")
    addr, sep, after = tail.partition(",") if "," in tail else tail.partition("}")
    a, b, c, d = addr.split(".")
    moved = f"{a}.{b}.{(int(c) + 1) % 256}.{d}"
    lines[victim] = f"{head}{{interfaces: {{{net}: {moved}{sep}{after}"
    with pytest.raises(TopologyError) as caught:
        load_topology_text("\n".join(lines) + "\n", "random.yaml")
    node = head.strip().rstrip(":")
    (problem,) = caught.value.problems
    assert problem.startswith(f"random.yaml:{victim + 1}: nodes.{node}.interfaces.{net}: {moved} ")
    assert "is not in network" in problem
