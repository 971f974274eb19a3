"""The compose lab's run.json, assembled from the nodes' node.json files: what lab report
reads, with what a node could not give said as a node error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.deploy import compose_phases
from lab.deploy.compose import compose_dict
from lab.programs import compose_node, compose_record, compose_snapshots
from lab.run import portrange, watch
from lab.run.collect import SNAPSHOTS
from lab.run.record import RUN_SCHEMA_VERSION, RunRecord
from lab.spec.topology import load_topology
from tests.compose.test_compose import DEFAULT, REPO


def the_plan() -> dict[str, Any]:
    command = list(compose_dict(load_topology(REPO / DEFAULT))["services"]["report"]["command"])
    plan: dict[str, Any] = json.loads(command[command.index("--plan") + 1])
    return plan


def test_the_nodes_take_the_snapshots_lab_run_takes_and_write_its_run_json_version() -> None:
    assert compose_snapshots.SNAPSHOTS == SNAPSHOTS
    assert compose_record.RUN_SCHEMA_VERSION == RUN_SCHEMA_VERSION
    assert compose_snapshots.PORT_RANGE_FILE == portrange.PORT_RANGE_FILE
    assert (compose_snapshots.PORT_RANGE_PHASE, compose_snapshots.PORT_RANGE_KIND) == (
        portrange.PORT_RANGE_PHASE,
        portrange.PORT_RANGE_KIND,
    )
    assert compose_phases.PORT_RANGE_CLAIM == portrange.PORT_RANGE_CLAIM
    assert compose_snapshots.WATCH_EVERY == watch.WATCH_EVERY


def test_the_watch_takes_the_rounds_lab_run_takes() -> None:
    rounds = [phase for phase, _ in watch.watch_times(0.05, every=0.01)]
    assert [phase for phase, _ in compose_snapshots.watch_phases(0.05, every=0.01)] == rounds
    assert compose_snapshots.watch_phases(66.0)[-1] == ("watch-033", 66.0)
    assert compose_snapshots.watch_phases(0.0) == []


def test_a_watch_round_is_recorded_once_at_the_time_its_first_node_began_it() -> None:
    plan = the_plan()

    def rounds(first: float, second: float) -> list[dict[str, Any]]:
        return [{"phase": "watch-001", "time": first}, {"phase": "watch-002", "time": second}]

    server = {**server_facts(), "watch": rounds(110.02, 112.0)}
    client = {"started": 100.0, "ended": 107.0, "watch": rounds(110.0, 112.01)}
    data = compose_record.run_record(plan, {"server": server, "client1": client})
    record = RunRecord.from_json(data)
    assert [(w.phase, w.time) for w in record.watch or []] == [
        ("watch-001", 110.0), ("watch-002", 112.0),
    ]  # fmt: skip
    assert "watch" not in compose_record.run_record(plan, {"server": server_facts()})


def server_facts() -> dict[str, Any]:
    return {
        "started": 100.0,
        "ended": 107.5,
        "interfaces": {"eth0": "10.77.1.10"},
        "captures": [{"interface": "eth0", "pid": 8}],
        "phases": ["before", "during", "after", "final"],
        "errors": [],
        "services": {"fork": {"pid": 20, "log": "service-fork.log", "ended_before_stop": False,
                              "exit_status": 0}},
        "clients": {},
    }  # fmt: skip


def test_a_node_without_its_facts_is_a_node_error_and_its_clients_say_they_did_not_run() -> None:
    plan = the_plan()
    data = compose_record.run_record(plan, {"server": server_facts()})
    record = RunRecord.from_json(data)  # what lab report reads, checked as it checks it
    assert record.backend == "compose" and record.timings == {"run": 7.5}
    assert record.nodes["server"].interfaces == {"lan": "eth0"}
    assert [(c.node, c.interface, c.network, c.file) for c in record.captures] == [
        ("server", "eth0", "lan", "eth0.pcap")
    ]
    assert record.services["fork"].log == "server/service-fork.log"
    assert record.services["fork"].ended_before_stop is False
    assert {(e.node, e.error) for e in record.node_errors} == {
        ("client1", "no node.json"),
        ("client2", "no node.json"),
    }
    assert record.phases == []  # the missing nodes took none
    for scenario in record.scenarios.values():
        assert all(c.result is None and c.error for c in scenario.clients.values())


def test_a_client_that_printed_its_json_is_its_result(tmp_path: Path) -> None:
    plan = the_plan()
    (scenario, info), *_ = plan["scenarios"].items()
    node, job = next(iter(info["clients"].items()))
    output = {"program": "client", "server": "10.77.1.10:9999", "connections": [],
              "ok": 0, "failed": 0}  # fmt: skip
    facts = {name: server_facts() for name in plan["nodes"]}
    facts[node]["clients"] = {job: {"returncode": 0, "stdout": json.dumps(output), "stderr": ""}}
    record = RunRecord.from_json(compose_record.run_record(plan, facts))
    client = record.scenarios[scenario].clients[node]
    assert client.returncode == 0 and client.error is None and client.result is not None
    assert record.phases == ["before", "during", "after", "final"]


def test_prepare_keeps_the_previous_folder_under_its_time(tmp_path: Path) -> None:
    old = tmp_path / "compose"
    old.mkdir()
    (old / "topology.yaml").write_text("name: x\n")
    assert compose_record.prepare(tmp_path) == 0
    kept = [p.name for p in tmp_path.iterdir() if p.name != "compose"]
    assert len(kept) == 1 and kept[0].startswith("compose-")
    assert (tmp_path / kept[0] / "topology.yaml").exists()
    assert [p.name for p in (tmp_path / "compose").iterdir()] == [".sync"]


def test_what_a_client_got_is_shown_per_connection() -> None:
    output = {"connections": [
        {"index": 0, "local": "10.77.1.11:4000", "replies": ["HELLO", "WORLD"], "error": None},
        {"index": 1, "local": None, "replies": [], "error": "ECONNREFUSED"},
    ]}  # fmt: skip
    assert compose_node.reply_lines(json.dumps(output)) == [
        "connection 0 from 10.77.1.11:4000: got 'HELLO', 'WORLD'",
        "connection 1 from None: got nothing (ECONNREFUSED)",
    ]
    assert compose_node.reply_lines("Traceback ...\nError") == ["Traceback ...", "Error"]


def test_the_restarts_and_a_user_servers_end_are_in_run_json_as_lab_run_writes_them() -> None:
    command = compose_dict(load_topology(REPO / "topologies/experiments/errors.yaml"))
    words = list(command["services"]["report"]["command"])
    plan = json.loads(words[words.index("--plan") + 1])
    restart = {"service": "restartable", "reuseaddr": False, "expect": "EADDRINUSE",
               "stopped_status": -15, "snapshot": "restart-restart-1", "pid": 31,
               "log": "server/service-restartable-restart-1.log", "listening": False,
               "listen_socket": "", "exit_status": 1}  # fmt: skip
    server = server_facts()
    server["services"] = {
        "restartable": {"pid": 20, "log": "service-restartable.log", "ended_before_stop": False,
                        "exit_status": -15, "restarted_as": [32], "killed_after_grace": False,
                        "log_truncated": True},
    }  # fmt: skip
    server["restarts"] = {"restart": [restart]}
    record = RunRecord.from_json(compose_record.run_record(plan, {"server": server}))
    (done,) = record.scenarios["restart"].restarts or []
    assert (done.snapshot, done.listening, done.exit_status, done.pid) == (
        "restart-restart-1",
        False,
        1,
        31,
    )
    service = record.services["restartable"]
    assert service.restarted_as == [32] and service.log_truncated is True
    assert service.killed_after_grace is False
    assert record.scenarios["refused"].restarts is None  # only the scenario that restarts
