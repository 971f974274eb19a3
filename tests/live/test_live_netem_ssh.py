"""``lab netem`` on a live lab of ssh hosts (network namespaces with their own sshd, see
tests/ssh/hosts.py): refused unless ``--allow-impair-ssh`` is given; then a root qdisc of
the lab's own handle on the host's interface, never over a qdisc that is not the lab's;
and ``lab down`` of a lab whose supervisor was killed (from the run's state file alone)
gives the interface back its default qdisc and leaves the user's own alone."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.run.backends import kernel
from lab.run.backends.ssh.impair import HANDLE
from tests.labcli import lab
from tests.live.conftest import SshLab, kill_supervisor
from tests.live.terminal import up_at_terminal
from tests.ssh.test_ssh import MINI, assert_nothing_left

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

USERS_OWN = ["tbf", "rate", "5mbit", "burst", "10kb", "latency", "50ms"]


def root_qdisc(namespace: str, iface: str) -> tuple[str, str]:
    argv = ["ip", "netns", "exec", namespace, "tc", "-j", "qdisc", "show", "dev", iface, "root"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    q = json.loads(out)[0]
    return str(q["kind"]), str(q["handle"])


def test_netem_over_ssh_is_opt_in_and_undone(
    ssh_lab: Callable[[Path], SshLab], tmp_path: Path
) -> None:
    source = tmp_path / "mini.yaml"
    source.write_text(MINI)
    live = ssh_lab(source)
    world, env = live.world, live.env
    up_at_terminal(*live.up_args(tmp_path / "out"), env=env, timeout=120)
    state = live.state()
    ifaces = {n["name"]: n["interfaces"]["lan"] for n in state["nodes"]}
    client_ns, server_ns = (world.hosts[n].namespace for n in ("client1", "server"))
    default = root_qdisc(client_ns, ifaces["client1"])
    # The user's own qdisc on the server, which the lab must neither replace nor remove.
    tc_own = ["ip", "netns", "exec", server_ns, "tc", "qdisc", "replace", "dev", ifaces["server"]]
    subprocess.run([*tc_own, "root", "handle", "77:", *USERS_OWN], check=True)
    try:
        refused = lab("netem", "client1", "eth0", "--rate", "1mbit", env=env)
        assert refused.returncode == 2 and "needs --allow-impair-ssh" in refused.stderr
        assert root_qdisc(client_ns, ifaces["client1"]) == default

        allowed = ("--allow-impair-ssh",)
        done = lab("netem", "client1", ifaces["client1"], "--rate", "1mbit", *allowed, env=env)
        assert done.returncode == 0, done.stderr
        kind, handle = root_qdisc(client_ns, ifaces["client1"])
        assert handle == HANDLE and kind in ("tbf", "netem")
        done = lab("netem", "client1", "lan", "--rate", "2mbit", *allowed, env=env)
        assert done.returncode == 0, done.stderr  # a change replaces the lab's own qdisc
        ingress = lab("netem", "client1", "lan", "--direction", "ingress", "--rate", "1mbit",
                      *allowed, env=env)  # fmt: skip
        assert ingress.returncode == 2 and "only what a node sends (egress)" in ingress.stderr
        if not kernel.kernel_has_netem():
            loss = lab("netem", "client1", "lan", "--loss", "5%", *allowed, env=env)
            assert loss.returncode == 2 and "no netem qdisc" in loss.stderr
            assert root_qdisc(client_ns, ifaces["client1"]) == ("tbf", HANDLE)  # unchanged
        theirs = lab("netem", "server", "lan", "--rate", "1mbit", *allowed, env=env)
        assert theirs.returncode == 2 and "that is not the lab's" in theirs.stderr
        assert root_qdisc(server_ns, ifaces["server"]) == ("tbf", "77:")

        kill_supervisor(state)  # a failed lab: only the state file says what it did
        down = lab("down", env=env)
        assert "is stale" in down.stderr
        assert f"qdisc {HANDLE} on {ifaces['client1']}" in down.stdout
        assert root_qdisc(client_ns, ifaces["client1"]) == default
        assert root_qdisc(server_ns, ifaces["server"]) == ("tbf", "77:")
    finally:
        lab("down", env=env)
        subprocess.run([*tc_own[:6], "del", "dev", ifaces["server"], "root"], check=False)
    assert_nothing_left(str(state["run_id"]))
