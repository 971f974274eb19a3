"""Whole-file behaviour: every problem at once, in file order, each at the offending line;
and what a valid file turns into."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.spec.model import Capture
from lab.spec.topology import DEFAULT_PORTS, load_topology, load_topology_text, validate_file

# Each line marked "# <- key.path" is where exactly one problem must be reported.
MANY_ERRORS = """\
name: many
networks:
  lan: {subnet: 10.77.1.0/24}
  dmz: {subnet: 10.77.1.128/25}         # <- networks.dmz.subnet
  wan: {subnet: 10.77.9.0/24, mtu: 100}    # <- networks.wan.mtu
nodes:
  server:
    interfaces: {lan: 10.77.1.10}
    router: 1                            # <- nodes.server.router
  client:
    interfaces: {lan: 10.77.1.10}        # <- nodes.client.interfaces.lan
  "bad node":                            # <- nodes["bad node"]
    interfaces: {lan: 10.77.1.20}
services:
  fork: {node: server, program: fork_server, port: 99999}   # <- services.fork.port
  odd: {node: server, program: forkserver}                  # <- services.odd.program
scenarios:
  - name: one
    service: fork
    clients: [client, nobody]            # <- scenarios[0].clients[1]
    send: [hello]
    expect: [HELLO, EXTRA]               # <- scenarios[0].expect
    concurrency: true                    # <- scenarios[0].concurrency
capture: {snaplen: 10}                   # <- capture.snaplen
"""


def marked_lines(text: str) -> list[tuple[int, str]]:
    """(line, key path) of every ``# <- key.path`` marker."""
    return [
        (number, line.split("# <- ")[1].strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if "# <- " in line
    ]


def problems_of(text: str, filename: str = "many.yaml") -> list[str]:
    with pytest.raises(TopologyError) as caught:
        load_topology_text(text, filename)
    return caught.value.problems


def test_one_file_with_many_errors_reports_all_of_them_at_their_lines() -> None:
    problems = problems_of(MANY_ERRORS)
    marks = marked_lines(MANY_ERRORS)
    assert len(marks) == 11
    located = [(int(p.split(":")[1]), p.split(": ")[1]) for p in problems]
    assert located == marks


def test_problems_are_in_file_order_and_formatted_file_line_path_message() -> None:
    problems = problems_of(MANY_ERRORS, "dir/many.yaml")
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)
    for p in problems:
        file, line, rest = p.split(":", 2)
        assert file == "dir/many.yaml" and line.isdigit() and rest.startswith(" ")
        path, message = rest[1:].split(": ", 1)
        assert path and message


def test_the_problem_line_moves_with_the_offending_key() -> None:
    base = "networks:\n  lan: {subnet: 10.77.1.0/24}\nnodes:\n  a: {interfaces: {lan: 10.77.1.5}}\n"
    for padding in range(4):
        text = "# comment\n" * padding + base.replace("10.77.1.5", "10.77.2.5")
        (problem,) = problems_of(text, "t.yaml")
        assert problem.startswith(f"t.yaml:{4 + padding}: nodes.a.interfaces.lan: ")


def test_missing_required_key_is_reported_at_the_key_that_lacks_it() -> None:
    text = "networks:\n  lan: {subnet: 10.77.1.0/24}\nnodes:\n  a:\n    router: true\n"
    assert problems_of(text, "t.yaml") == ["t.yaml:4: nodes.a: missing required key 'interfaces'"]


def test_valid_file_becomes_the_model_with_defaults_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "tiny-lab.yaml"
    path.write_text(
        "networks:\n"
        "  lan: {subnet: 192.168.50.0/24}\n"
        "nodes:\n"
        "  s: {interfaces: {lan: 192.168.50.2}}\n"
        "  c: {interfaces: {lan: 192.168.50.3}}\n"
        "services:\n"
        "  it: {node: s, program: iterative_server, options: {reuseaddr: true, backlog: 1}}\n"
        "  u: {node: s, program: udp_echo}\n"
        "scenarios:\n"
        "  - {name: x, service: it, clients: [c],\n"
        "     send: [no, 1.0, 'a b'], expect: [NO, '1.0', A B]}\n",
        encoding="utf-8",
    )
    t = load_topology(path)
    assert t.name == "tiny-lab" and t.source == path and t.description == ""
    assert t.network("lan").subnet == IPv4Network("192.168.50.0/24")
    assert t.node("s").interfaces[0].address == IPv4Address("192.168.50.2")
    assert t.node("s").gateway is None and not t.node("s").router
    it, u = t.services
    assert it.port == DEFAULT_PORTS["iterative_server"] == 9877
    assert u.port == DEFAULT_PORTS["udp_echo"] and u.protocol == "udp"
    assert it.options == (("reuseaddr", True), ("backlog", 1))  # file order kept
    assert it.args() == ["--host", "0.0.0.0", "--port", "9877", "--reuseaddr", "--backlog", "1"]
    (sc,) = t.scenarios
    # Items are taken verbatim: YAML's "no" is not False, "1.0" is not a float.
    assert sc.send == ("no", "1.0", "a b") and sc.expect == ("NO", "1.0", "A B")
    assert (sc.concurrency, sc.hold, sc.half_close) == (1, 0.0, False)
    assert t.capture == Capture()
    assert validate_file(path) == []


def test_interface_order_is_file_order() -> None:
    text = (
        "networks:\n  b: {subnet: 10.1.2.0/24}\n  a: {subnet: 10.1.1.0/24}\n"
        "nodes:\n  r: {router: true, interfaces: {b: 10.1.2.1, a: 10.1.1.1}}\n"
    )
    t = load_topology_text(text, "order.yaml")
    assert t.node("r").networks == ("b", "a")
    assert [n.name for n in t.networks] == ["b", "a"]


def test_unreadable_file_is_one_located_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    (problem,) = validate_file(missing)
    assert problem.startswith(f"{missing}:1: (document): cannot read the file")


def test_file_that_is_not_utf8_is_one_located_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: t\ndescription: caf\xe9\n")
    assert validate_file(path) == [
        f"{path}:2: (document): not UTF-8 text (invalid continuation byte)"
    ]


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (1 << 20) + b"\n")
    (problem,) = validate_file(path)
    assert "larger than" in problem


def test_alias_bomb_is_reported_not_expanded() -> None:
    # Nine levels of ten aliases each would be 10**9 nodes if aliases were followed.
    lines = ["bomb:", '  - &a0 ["x"]']
    lines += [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    lines += [
        "networks: {lan: {subnet: 10.77.1.0/24}}",
        "nodes: {s: {interfaces: {lan: 10.77.1.2}}, c: {interfaces: {lan: 10.77.1.3}}}",
        "services: {u: {node: s, program: udp_echo}}",
        "scenarios:",
        "  - {name: x, service: u, clients: [c], send: [*a9, *a9], expect: [a, b]}",
    ]
    problems = problems_of("\n".join(lines) + "\n", "bomb.yaml")
    last = len(lines)
    assert problems == [
        "bomb.yaml:1: bomb: unknown key 'bomb' (known keys: name, description, networks, "
        "nodes, programs, services, scenarios, capture)",
        f"bomb.yaml:{last}: scenarios[0].send[0]: aliases (*a9) are not supported; "
        "write the value out",
        f"bomb.yaml:{last}: scenarios[0].send[1]: aliases (*a9) are not supported; "
        "write the value out",
    ]


def test_syntax_error_is_a_single_problem_at_its_line() -> None:
    problems = problems_of("name: t\nnodes:\n  a: [1, 2\n  b: 3\n", "s.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("s.yaml:4: (document): YAML syntax error: ")


def test_optional_sections_left_empty_count_as_absent() -> None:
    text = (
        "networks: {lan: {subnet: 10.7.0.0/24}}\n"
        "nodes: {a: {interfaces: {lan: 10.7.0.2}}}\n"
        "description:\nservices:\nscenarios: ~\ncapture:\n"
    )
    t = load_topology_text(text, "empty-sections.yaml")
    assert (t.services, t.scenarios, t.capture, t.description) == ((), (), Capture(), "")
    # The required sections may not be left empty.
    problems = problems_of("networks:\nnodes:\n", "e.yaml")
    assert [p.split(": ", 2)[1] for p in problems] == ["networks", "nodes"]
