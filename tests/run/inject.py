"""Faults made from outside the lab, the way an operator (or bad luck) would: by the
run's names and labels, with `ip netns` and the Docker SDK, never with the lab's code."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from typing import Any

PORT = 8000  # the service port of tests/run/faults.yaml


def _ns(run_id: str, node: str) -> str:
    return f"slab-{run_id}-{node}"


def netns_kill_node(run_id: str, node: str) -> None:
    """Kill every process in the node's namespace, then delete the namespace."""
    ns = _ns(run_id, node)
    while True:  # the lab may start a command there meanwhile (a snapshot): again
        pids = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=True
        ).stdout.split()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], check=True)


def _listener_pid(ss_output: str) -> int:
    found = re.search(r"pid=(\d+)", ss_output)
    assert found, f"no listening process in: {ss_output!r}"
    return int(found.group(1))


def netns_kill_server(run_id: str, node: str) -> int:
    """SIGKILL the process listening on the service port, found with ss on the node."""
    out = subprocess.run(
        ["ip", "netns", "exec", _ns(run_id, node), "ss", "-Hltnp", "sport", "=", f":{PORT}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pid = _listener_pid(out)
    os.kill(pid, signal.SIGKILL)
    return pid


def netns_cut_link(run_id: str, node: str, ifname: str = "eth0") -> None:
    subprocess.run(
        ["ip", "netns", "exec", _ns(run_id, node), "ip", "link", "set", ifname, "down"],
        check=True,
    )


def _container(run_id: str, node: str) -> Any:
    import docker

    client = docker.from_env()
    labels = [f"socket-lab.run={run_id}", f"socket-lab.node={node}"]
    found = client.containers.list(filters={"label": labels})
    assert len(found) == 1, f"containers of {node} in run {run_id}: {found}"
    return found[0]


def docker_kill_node(run_id: str, node: str) -> None:
    _container(run_id, node).kill()


def docker_kill_server(run_id: str, node: str) -> int:
    container = _container(run_id, node)
    code, out = container.exec_run(["ss", "-Hltnp", "sport", "=", f":{PORT}"])
    assert code == 0, out
    pid = _listener_pid(out.decode())
    code, out = container.exec_run(["kill", "-KILL", str(pid)])
    assert code == 0, out
    return pid


def docker_cut_link(run_id: str, node: str, ifname: str = "eth0") -> None:
    code, out = _container(run_id, node).exec_run(["ip", "link", "set", ifname, "down"])
    assert code == 0, out
