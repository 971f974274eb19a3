"""``impair:`` steps: read and located in the topology; at run time each goes on at its
start, the link is put back after its duration or when the scenarios end, and a step
that cannot be applied fails the run."""

from __future__ import annotations

import threading

import pytest

from lab.errors import BackendError, LabError, TopologyError
from lab.run.impair import Impairer
from lab.run.record import ImpairRecord
from lab.spec.netem import ImpairStep, Netem
from lab.spec.topology import load_topology_text

TOPO = """\
name: steps
networks:
  lan:
    subnet: 10.77.1.0/24
    netem: {{delay: 10ms}}
nodes:
  s: {{interfaces: {{lan: 10.77.1.10}}}}
  c: {{interfaces: {{lan: 10.77.1.11}}}}
services:
  echo: {{node: s, program: fork_server}}
scenarios:
  - name: x
    service: echo
    clients: [c]
    send: [a]
    expect: [A]
    impair:
{steps}
"""


def steps_of(steps: str) -> tuple[ImpairStep, ...]:
    return load_topology_text(TOPO.format(steps=steps), "t.yaml").scenarios[0].impair


def test_steps_are_read() -> None:
    (step,) = steps_of(
        "      - {node: s, network: lan, start: 1, duration: 2, netem: {loss: 100%}}"
    )
    assert step == ImpairStep("s", "lan", "ingress", 1.0, 2.0, Netem(loss=100.0))


AT = "scenarios[0].impair[0]"


@pytest.mark.parametrize(
    ("step", "where"),
    [
        ("{node: x, network: lan, duration: 1, netem: {}}", f"{AT}.node: unknown node 'x'"),
        (
            "{node: s, network: wan, duration: 1, netem: {}}",
            f"{AT}.network: node s has no interface on 'wan'",
        ),
        ("{node: s, network: lan, netem: {}}", f"{AT}: missing required key 'duration'"),
        (
            "{node: s, network: lan, duration: 1, netem: {loss: 101%}}",
            f"{AT}.netem.loss: '101%' is outside",
        ),
        ("{node: s, network: lan, duration: 1, direction: up, netem: {}}", f"{AT}.direction:"),
    ],
)
def test_bad_steps_are_located(step: str, where: str) -> None:
    with pytest.raises(TopologyError) as err:
        steps_of(f"      - {step}")
    (problem,) = err.value.problems
    assert problem.startswith(f"t.yaml:18: {where}"), problem


class Recorder:
    """Stands in for a backend: every set_netem call, in order."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, Netem | None]] = []
        self.fail = fail
        self.changed = threading.Event()

    def set_netem(self, node: str, network: str, direction: str, netem: Netem | None) -> None:
        self.changed.set()
        if self.fail:
            raise BackendError("no netem here")
        self.calls.append((f"{node} {network} {direction}", netem))


def impairer(backend: Recorder, step: ImpairStep) -> tuple[Impairer, ImpairRecord]:
    topo = load_topology_text(
        TOPO.format(steps="      - {node: s, network: lan, duration: 1, netem: {}}")
    )
    record = ImpairRecord(step.node, step.network, step.direction, step.netem.describe())
    return Impairer(backend, topo, [(step, record)]), record  # type: ignore[arg-type]


def test_a_step_goes_on_and_the_topology_netem_comes_back() -> None:
    backend = Recorder()
    lossy = Netem(loss=100.0)
    imp, record = impairer(backend, ImpairStep("s", "lan", "ingress", 0, 0, lossy))
    imp.start()
    while len(backend.calls) < 2:
        assert backend.changed.wait(10)
        backend.changed.clear()
    imp.stop()
    # Back to what the network gave the server's ingress, not to nothing.
    assert backend.calls == [("s lan ingress", lossy), ("s lan ingress", Netem(delay_us=10_000))]
    assert record.applied is not None and record.restored is not None
    imp.raise_errors()


def test_stop_puts_back_a_step_still_on() -> None:
    backend = Recorder()
    imp, record = impairer(backend, ImpairStep("c", "lan", "egress", 0, 600, Netem(loss=5.0)))
    imp.start()
    assert backend.changed.wait(10)
    imp.stop()
    assert backend.calls == [("c lan egress", Netem(loss=5.0)), ("c lan egress", None)]
    assert record.restored is not None


def test_a_step_that_cannot_be_applied_fails_the_run() -> None:
    imp, record = impairer(
        Recorder(fail=True), ImpairStep("s", "lan", "ingress", 0, 1, Netem(loss=5.0))
    )
    imp.start()
    imp.stop()
    # Stopped before its start came: nothing applied, nothing to report.
    if record.error is None:
        return
    with pytest.raises(LabError, match="impair s lan ingress: no netem here"):
        imp.raise_errors()
