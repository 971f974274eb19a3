"""Docker refuses impairments on a kernel without netem before any container exists: the
netns backend's fallback (nftables, tbf) would have to go on the host's end of each link,
in the host's netfilter that Docker's own rules share."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lab.run.backends import kernel
from lab.run.backends.docker import DockerBackend
from lab.spec.netem import NO_NETEM_KERNEL, Impairment, Netem
from tests.backends.contract_kit import lan


@pytest.mark.parametrize("has_netem", [True, False])
def test_docker_refuses_even_loss_without_netem(
    monkeypatch: pytest.MonkeyPatch, has_netem: bool
) -> None:
    monkeypatch.setattr(kernel, "kernel_has_netem", lambda: has_netem)
    lossy = replace(
        lan("a", "b", subnet="10.20.36.0/24"),
        impairments=(Impairment("b", "lan", "ingress", Netem(loss=5.0)),),
    )
    problems = DockerBackend.topology_problems(lossy)
    if has_netem:
        assert problems == []
    else:
        (problem,) = problems
        assert problem.startswith(NO_NETEM_KERNEL) and "--backend netns" in problem
    assert DockerBackend.topology_problems(lan("a", "b", subnet="10.20.37.0/24")) == []
