"""``lab netem`` on a live lab, on netns and Docker: a change is where the backend puts the
topology's impairments and acts on the wire, ``--show`` lists it, ``--clear`` takes it
off, bad values and what this kernel cannot make are refused with exit 2, and nothing the
lab added (nftables table, tbf or netem qdisc) survives ``lab down``, a supervisor
interrupted by a signal, or one killed outright (a failed lab, cleaned by ``lab down``).

Loss and rate only, which work with or without the kernel's netem qdisc; delay is checked
to be refused where the kernel lacks netem and applied where it has it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from lab.run.backends import kernel
from lab.run.backends.netns.names import SWITCH, ns_name, veth_name
from lab.run.backends.netns.nonetem import TABLE
from tests.labcli import lab
from tests.leftovers import netns_objects
from tests.live.conftest import kill_supervisor, supervisor
from tests.live.terminal import up_at_terminal
from tests.live.test_live_docker import containers
from tests.live.test_live_netns import DEFAULT, up
from tests.netem.test_nonetem_netns import REACH, host_state, qdisc_kinds

SERVER = "10.77.1.10"
# Two nodes as in the default topology, and a scenario whose `impair` step changes
# client1's egress for a moment: the step must put back what `lab netem` set there.
STEPPED = """\
name: stepped
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  server: {interfaces: {lan: 10.77.1.10}}
  client1: {interfaces: {lan: 10.77.1.11}}
services:
  fork: {node: server, program: fork_server, port: 9999}
scenarios:
  - name: stepped
    service: fork
    clients: [client1]
    send: [hi]
    expect: [HI]
    impair:
      - {node: client1, network: lan, direction: egress, start: 0, duration: 0.3,
         netem: {loss: 1%}}
"""


def reaches(env: dict[str, str], tries: int = 1) -> bool:
    """Whether client1's SYN to a closed port of the server is answered (its RST).

    client1's egress keeps its 10% loss throughout, so one try of 2 s (the SYN and one
    retransmission) misses about once in a hundred; a check that it *does* reach takes
    several tries, a check that it does not needs only one."""
    quick = REACH.replace("settimeout(5)", "settimeout(2)")  # an answer takes microseconds
    argv = ["exec", "client1", "--", "python3", "-c", quick, SERVER]
    return any(lab(*argv, env=env).returncode == 0 for _ in range(tries))


def loss_chains(run_id: str) -> dict[str, list[str]]:
    """chain -> its rules, in the run's loss table in the switch (empty: no table)."""
    argv = ["ip", "netns", "exec", ns_name(run_id, SWITCH), "nft", "-j", "list", "table"]
    done = subprocess.run([*argv, "bridge", TABLE], capture_output=True, text=True)
    if done.returncode != 0:
        return {}
    chains: dict[str, list[str]] = {}
    for item in json.loads(done.stdout)["nftables"]:
        if "chain" in item:
            chains.setdefault(item["chain"]["name"], [])
        if "rule" in item:
            chains[item["rule"]["chain"]].append(json.dumps(item["rule"]["expr"]))
    return chains


def test_netem_changed_shown_cleared_and_gone_with_the_lab(
    tmp_path: Path, env: dict[str, str]
) -> None:
    before = host_state()
    topo = tmp_path / "stepped.yaml"
    topo.write_text(STEPPED)
    state = up(tmp_path, env, "out", file=str(topo))
    rid = str(state["run_id"])
    server_side = veth_name(rid, 0)  # the switch's end of the server's link
    client = ns_name(rid, "client1")

    done = lab("netem", "client1", "eth0", "--loss", "10%", "--rate", "1mbit", env=env)
    assert (done.returncode, done.stdout) == (
        0,
        "netem client1's lan egress: loss 10% rate 1mbit\n",
    )
    assert qdisc_kinds(client, "eth0")[0] in ("tbf", "netem")
    # Everything the server receives is lost on the wire; its answers never come.
    done = lab("netem", "server", "eth0", "--direction", "ingress", "--loss", "100%", env=env)
    assert done.returncode == 0, done.stderr
    if not kernel.kernel_has_netem():
        assert len(loss_chains(rid)[f"in_{server_side}"]) == 1
    assert not reaches(env)
    show = lab("netem", "--show", env=env)
    assert show.stdout.splitlines()[1:] == [
        "client1    eth0       egress    loss 10% rate 1mbit",
        "server     eth0       ingress   loss 100%",
    ]

    bad = lab("netem", "server", "eth1", "--loss", "1%", env=env)
    assert bad.returncode == 2 and "node server has no interface 'eth1'" in bad.stderr
    bad = lab("netem", "nobody", "eth0", "--loss", "1%", env=env)
    assert bad.returncode == 2 and "has no node 'nobody'" in bad.stderr
    bad = lab("netem", "server", "eth0", "--loss", "120%", env=env)
    assert bad.returncode == 2 and "--loss: '120%' is outside 0% to 100%" in bad.stderr
    delay = lab("netem", "client1", "eth0", "--delay", "50ms", env=env)
    if kernel.kernel_has_netem():
        assert delay.returncode == 0, delay.stderr
        assert qdisc_kinds(client, "eth0")[0] == "netem"
    else:
        assert delay.returncode == 2
        assert "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): delay" in delay.stderr
        assert qdisc_kinds(client, "eth0")[0] == "tbf"  # refused before any change

    assert (
        lab("netem", "server", "eth0", "--direction", "ingress", "--clear", env=env).returncode == 0
    )
    assert reaches(env, tries=4)
    if not kernel.kernel_has_netem():
        assert loss_chains(rid)[f"in_{server_side}"] == []
    assert "server" not in lab("netem", "--show", env=env).stdout
    # The scenario's step changes client1's egress and puts back lab netem's, not nothing.
    assert lab("scenario", "stepped", env=env).returncode == 0
    assert qdisc_kinds(client, "eth0")[0] in ("tbf", "netem")

    down = lab("down", env=env)
    assert down.returncode == 0, down.stderr
    assert netns_objects(rid) == []
    assert host_state() == before
    changes = json.loads((tmp_path / "out" / "live.json").read_text())["netem"]
    assert [(c["node"], c["direction"], c["netem"]) for c in changes][-1] == (
        "server",
        "ingress",
        "none",
    )


def test_nothing_left_after_the_supervisor_is_killed(tmp_path: Path, env: dict[str, str]) -> None:
    # A lab that failed: its supervisor gone, `lab down` cleans what it left.
    before = host_state()
    state = up(tmp_path, env, "out")
    rid = str(state["run_id"])
    for node, direction in (("client1", "egress"), ("server", "ingress")):
        done = lab("netem", node, "eth0", "--direction", direction, "--loss", "5%", "--rate",
                   "2mbit", env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
    kill_supervisor(state)
    assert "is stale" in lab("down", env=env).stderr
    assert netns_objects(rid) == []
    assert host_state() == before


def root_kind(docker_env: dict[str, str], node: str) -> str:
    argv = ["exec", node, "--", "tc", "-j", "qdisc", "show", "dev", "eth0", "root"]
    return str(json.loads(lab(*argv, env=docker_env).stdout)[0]["kind"])


def host_link(ifindex: int) -> dict[str, object] | None:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
    return next((link for link in json.loads(out) if link.get("ifindex") == ifindex), None)


def test_docker_netem_and_nothing_left_after_sigint(
    tmp_path: Path, root: None, docker_env: dict[str, str]
) -> None:
    env = docker_env
    up_at_terminal(
        DEFAULT, "--backend", "docker", "--out", str(tmp_path / "o"), env=env, timeout=120
    )
    state = json.loads(next((tmp_path / "state" / "live").glob("*.json")).read_text())
    owner = supervisor(state)
    shaped = ("tbf", "netem")
    assert lab("netem", "client1", "eth0", "--rate", "1mbit", env=env).returncode == 0
    assert root_kind(env, "client1") in shaped  # egress: inside the container
    done = lab("netem", "server", "eth0", "--direction", "ingress", "--rate", "2mbit", env=env)
    assert done.returncode == 0, done.stderr
    iflink = lab("exec", "server", "--", "cat", "/sys/class/net/eth0/iflink", env=env).stdout
    peer = host_link(int(iflink))
    assert peer is not None  # ingress: on the host's end of the server's link
    argv = ["tc", "-j", "qdisc", "show", "dev", str(peer["ifname"]), "root"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert json.loads(out)[0]["kind"] in shaped
    loss = lab("netem", "client1", "eth0", "--loss", "5%", env=env)
    if not kernel.kernel_has_netem():
        assert loss.returncode == 2
        assert "only `rate` (tbf) can be applied on Docker" in loss.stderr
        assert "(asked for: loss)" in loss.stderr
        assert root_kind(env, "client1") == "tbf"  # refused before any change

    os.kill(owner.pid, signal.SIGINT)
    deadline = time.monotonic() + 120
    while containers(state["run_id"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers(state["run_id"]) == []
    while owner.alive() and time.monotonic() < deadline:
        time.sleep(0.2)  # the supervisor writes the report, then forgets the lab
    assert list((tmp_path / "state" / "live").glob("*.json")) == []
    # The host's end of the link, and its qdisc, went with the container.
    assert host_link(int(iflink)) != peer
