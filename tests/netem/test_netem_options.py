"""``lab netem``'s values are read as the topology's ``netem`` keys: the same units, ranges
and rules, each problem named by its option; refused before any lab is looked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import UsageError
from lab.spec.netem import Netem, netem_from_options
from lab.spec.topology import load_topology_text
from tests.labcli import lab

TOPO = """\
name: same
networks:
  lan: {{subnet: 10.77.1.0/24, netem: {{{netem}}}}}
nodes:
  s: {{interfaces: {{lan: 10.77.1.10}}}}
"""


def test_options_give_what_the_topology_gives() -> None:
    text = {"delay": "0.1s", "jitter": "10ms", "loss": "5%", "rate": "1mbit", "reorder": "25%"}
    netem = netem_from_options({**text, "corrupt": None}, limit=500)
    spelled = ", ".join(f"{k}: {v}" for k, v in text.items()) + ", limit: 500"
    (imp,) = load_topology_text(TOPO.format(netem=spelled), "t.yaml").impairments
    assert netem == imp.netem
    assert netem == Netem(100_000, 10_000, 5.0, 0.0, 25.0, 0.0, 1_000_000, 500)


@pytest.mark.parametrize(
    ("values", "limit", "message"),
    [
        ({"loss": "120%"}, None, "--loss: '120%' is outside 0% to 100%"),
        ({"delay": "-1ms"}, None, "--delay: '-1ms' is negative"),
        ({"rate": "3furlong"}, None, "--rate: '3furlong' unknown unit 'furlong'"),
        ({"delay": "50"}, None, "--delay: '50' needs a unit"),
        ({"jitter": "5ms"}, None, "--jitter needs --delay"),
        ({"loss": "5"}, None, "--loss: '5' is not a percentage"),
        ({}, 0, "--limit: 0 is outside 1 to 1000000"),
    ],
)
def test_bad_values_are_named_by_their_option(
    values: dict[str, str | None], limit: int | None, message: str
) -> None:
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(")):
        netem_from_options(values, limit)


def test_every_problem_is_said_at_once() -> None:
    with pytest.raises(UsageError) as raised:
        netem_from_options({"loss": "120%", "rate": "1furlong"})
    assert "--loss" in str(raised.value) and "--rate" in str(raised.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("client1", "eth0", "--delay=-1ms"), "--delay: '-1ms' is negative"),
        (("client1", "eth0", "--clear", "--loss", "1%"), "--clear takes no values"),
        (("client1", "eth0", "--loss", "1%"), "no live lab"),
    ],
)
def test_cli_refuses_before_looking_for_a_lab(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = lab("netem", *args, env={"SOCKET_LAB_STATE": str(tmp_path / "state")})
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
