"""Every shipped topology's compose file against the Compose Specification's JSON schema
(the copy docker-compose 1.29 carries), and its network wiring checked as data."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lab.deploy.compose import MASQUERADE, compose_text
from lab.spec.model import Topology
from lab.spec.topology import load_topology
from tests.compose.shipped import SHIPPED, shipped_id
from tests.conftest import require

SCHEMA_NAME = "compose_spec.json"
FIND_SCHEMA = "import compose.config, os; print(os.path.dirname(compose.config.__file__))"


@cache
def compose_schema() -> dict[str, Any]:
    """The schema docker-compose 1.29 validates files with, found through the interpreter
    its script runs with (it is not this interpreter's package)."""
    script = shutil.which("docker-compose")
    require(script is not None, "needs docker-compose 1.29 (run .ci/setup)")
    assert script is not None
    shebang = Path(script).read_text(errors="replace").splitlines()[0]
    python = shebang.removeprefix("#!").split()
    where = subprocess.run(
        [*python, "-c", FIND_SCHEMA],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    data: dict[str, Any] = json.loads((Path(where.stdout.strip()) / SCHEMA_NAME).read_text())
    return data


def validate(data: dict[str, Any]) -> None:
    # The schema names draft 2019-09 by a URL jsonschema does not know: say it outright.
    jsonschema.Draft201909Validator(compose_schema()).validate(data)


def generated(path: Path) -> tuple[Topology, dict[str, Any]]:
    topology = load_topology(path)
    return topology, yaml.safe_load(compose_text(topology))


@pytest.mark.parametrize("path", SHIPPED, ids=shipped_id)
def test_the_file_follows_the_compose_specification(path: Path) -> None:
    _, data = generated(path)
    assert "version" not in data  # obsolete in the Compose Specification
    validate(data)


def test_the_schema_refuses_what_the_specification_does_not_have() -> None:
    _, data = generated(SHIPPED[0])
    first = next(iter(data["services"].values()))
    first["no_such_key"] = 1
    with pytest.raises(jsonschema.ValidationError, match="no_such_key"):
        validate(data)


@pytest.mark.parametrize("path", SHIPPED, ids=shipped_id)
def test_the_network_wiring_is_the_topology(path: Path) -> None:
    topology, data = generated(path)
    assert set(data["networks"]) == {net.name for net in topology.networks}
    for net in topology.networks:
        entry = data["networks"][net.name]
        assert entry["driver"] == "bridge" and "internal" not in entry
        mtu = {} if net.mtu is None else {"com.docker.network.driver.mtu": str(net.mtu)}
        assert entry["driver_opts"] == {MASQUERADE: "false", **mtu}
        (config,) = entry["ipam"]["config"]
        assert config["subnet"] == str(net.subnet)
    for node in topology.nodes:
        service = data["services"][node.name]
        wired = {i.network: {"ipv4_address": str(i.address)} for i in node.interfaces}
        assert service["networks"] == wired, node.name
        forwards = service.get("sysctls", {}).get("net.ipv4.ip_forward") == "1"
        assert forwards == node.router, node.name
        command = [str(word) for word in service["command"]]
        if node.gateway is None:
            assert "--gateway" not in command, node.name
        else:
            assert command[command.index("--gateway") + 1] == str(node.gateway), node.name
            # The gateway is a router's address on one of this node's own networks.
            routers = {
                str(i.address): i.network for n in topology.nodes if n.router for i in n.interfaces
            }
            assert routers.get(str(node.gateway)) in wired, node.name
