"""Experiment 9, errors: what the run records (probe reports, restarts, their logs and
snapshots), and each of its claims failing on evidence that contradicts it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import dpkt
import pytest

from lab.evidence.folder import Evidence
from lab.spec.model import Restart
from lab.spec.topology import load_topology
from lab.verdict.errors import check_probes, check_restarts
from tests.experiments.conftest import EXPERIMENTS, Runs
from tests.experiments.evidence_edit import (
    copy_results,
    judge,
    refresh,
    rewrite,
    server_pcap,
    tcp_of,
)

pytestmark = pytest.mark.netns


def _run_json(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / "run.json").read_text())
    return doc


def _edit_run(folder: Path, scenario: str, edit: Any) -> None:
    doc = _run_json(folder)
    edit(doc["scenarios"][scenario])
    (folder / "run.json").write_text(json.dumps(doc))


def _no_time_wait(folder: Path, phase: str) -> None:
    """The server's snapshot at a restart, as if its TIME_WAIT had already expired."""
    for kind, state in (("ss", "TIME-WAIT"), ("netstat", "TIME_WAIT")):
        snap = folder / "server" / "snapshots" / f"{phase}.{kind}.txt"
        text = snap.read_text()
        assert state in text
        snap.write_text("\n".join(line for line in text.splitlines() if state not in line))


# -- what the run records ------------------------------------------------------------------


def test_the_file_declares_probes_and_restarts() -> None:
    topo = load_topology(EXPERIMENTS / "errors.yaml")
    by_name = {sc.name: sc for sc in topo.scenarios}
    assert by_name["refused"].probe == "refused" and by_name["refused"].port == 9998
    assert topo.scenario_port(by_name["refused"]) == 9998
    assert by_name["epipe"].expect_error == "EPIPE" and by_name["epipe"].send == ()
    assert by_name["restart"].restart == (
        Restart(reuseaddr=False, expect="EADDRINUSE"),
        Restart(reuseaddr=True),
    )


def test_the_restarts_are_recorded_with_their_logs(root: None, experiment_runs: Runs) -> None:
    folder = experiment_runs["errors"][0]
    run = _run_json(folder)
    first, second = run["scenarios"]["restart"]["restarts"]
    assert first["reuseaddr"] is False and first["stopped_status"] == 0
    assert first["listening"] is False and first["exit_status"] == 1
    assert (
        (folder / first["log"])
        .read_text()
        .strip()
        .endswith("bind 0.0.0.0:9000: EADDRINUSE (Address already in use)")
    )
    assert second["reuseaddr"] is True and second["listening"] is True
    assert "0.0.0.0:9000" in second["listen_socket"]
    assert (folder / second["log"]).read_text().startswith("listening tcp 0.0.0.0:9000 ")
    # The restarted server is the one stopped at the end, and it stopped cleanly.
    assert run["services"]["restartable"]["restarted_as"] == [second["pid"]]
    assert run["services"]["restartable"]["exit_status"] == 0
    for phase in (first["snapshot"], second["snapshot"]):
        assert (folder / "server" / "snapshots" / f"{phase}.ss.txt").is_file()


def test_the_probe_reports_are_recorded(root: None, experiment_runs: Runs) -> None:
    run = _run_json(experiment_runs["errors"][0])
    clients = {n: sc["clients"]["client"] for n, sc in run["scenarios"].items()}
    assert {n: c["returncode"] for n, c in clients.items()} == dict.fromkeys(clients, 0)
    assert clients["refused"]["result"]["error"] == "ECONNREFUSED"
    assert clients["epipe"]["result"]["error"] == "EPIPE"
    assert clients["restart"]["result"]["error"] is None


def test_probe_check_fails_on_another_error(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)
    sc = next(s for s in load_topology(folder / "topology.yaml").scenarios if s.name == "epipe")
    assert check_probes(Evidence.load(folder), sc).passed

    def reset_instead(scenario: dict[str, Any]) -> None:
        scenario["clients"]["client"]["result"]["error"] = "ECONNRESET"

    _edit_run(folder, "epipe", reset_instead)
    check = check_probes(Evidence.load(folder), sc)
    assert not check.passed and "client: ECONNRESET" in check.detail


def test_restarts_check_fails_when_the_first_start_listened(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)
    topo = load_topology(folder / "topology.yaml")
    sc = next(s for s in topo.scenarios if s.name == "restart")
    assert check_restarts(Evidence.load(folder), sc).passed

    def listened(scenario: dict[str, Any]) -> None:
        scenario["restarts"][0]["listening"] = True

    _edit_run(folder, "restart", listened)
    check = check_restarts(Evidence.load(folder), sc)
    assert not check.passed and "#1 did not fail with EADDRINUSE" in check.detail

    def second_missing(scenario: dict[str, Any]) -> None:
        del scenario["restarts"][1]

    _edit_run(folder, "restart", second_missing)
    check = check_restarts(Evidence.load(folder), sc)
    assert not check.passed and check.detail.startswith("0/2 restarts as expected")
    assert "#2 was not done" in check.detail


# -- each claim can fail ---------------------------------------------------------------------


def test_refused_by_rst_fails_without_the_rst(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)
    assert judge(folder, "refused", "refused-by-rst").passed

    def drop_rst(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        tcp = tcp_of(eth)
        return None if tcp is not None and tcp.flags & dpkt.tcp.TH_RST else eth

    assert rewrite(server_pcap(folder), drop_rst) >= 1
    check = judge(folder, "refused", "refused-by-rst")
    assert not check.passed and "never answered the SYN with RST" in check.detail


def test_refused_by_rst_fails_when_the_rst_acks_another_number(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)

    def shift_ack(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet:
        tcp = tcp_of(eth)
        if tcp is not None and tcp.flags & dpkt.tcp.TH_RST:
            tcp.ack = (tcp.ack + 5) % (1 << 32)
            return refresh(eth)
        return eth

    assert rewrite(server_pcap(folder), shift_ack) >= 1
    check = judge(folder, "refused", "refused-by-rst")
    assert not check.passed and "does not acknowledge SYN seq + 1" in check.detail


def test_refused_by_rst_fails_when_the_client_reports_no_refusal(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)

    def timed_out(scenario: dict[str, Any]) -> None:
        conn = scenario["clients"]["client"]["result"]["connections"][0]
        conn["error"] = "ETIMEDOUT"
        conn["events"][0]["detail"] = "connect 10.77.111.10:9998: ETIMEDOUT (timed out)"

    _edit_run(folder, "refused", timed_out)
    check = judge(folder, "refused", "refused-by-rst")
    assert not check.passed and "ETIMEDOUT (timed out)" in check.detail


def test_epipe_after_reset_fails_without_the_servers_rst(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)
    assert judge(folder, "epipe", "epipe-after-reset").passed

    def drop_rst(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        tcp = tcp_of(eth)
        return None if tcp is not None and tcp.flags & dpkt.tcp.TH_RST else eth

    assert rewrite(server_pcap(folder), drop_rst) >= 1
    check = judge(folder, "epipe", "epipe-after-reset")
    assert not check.passed and "never answered the client's write with RST" in check.detail


def test_epipe_after_reset_fails_when_the_client_closed_first(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    # The close experiment: the client's FIN comes first, nothing is written after it.
    check = judge(experiment_runs["close"][0], "close", "epipe-after-reset")
    assert not check.passed and "the server did not close first" in check.detail


def test_eaddrinuse_fails_when_no_time_wait_was_there(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)
    assert judge(folder, "restart", "eaddrinuse-in-time-wait").passed
    _no_time_wait(folder, "restart-restart-1")
    check = judge(folder, "restart", "eaddrinuse-in-time-wait")
    assert not check.passed and "0 TIME_WAIT on server:9000" in check.detail


def test_eaddrinuse_fails_when_the_log_shows_no_eaddrinuse(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)
    first = _run_json(folder)["scenarios"]["restart"]["restarts"][0]
    (folder / first["log"]).write_text("bind 0.0.0.0:9000: EACCES (Permission denied)\n")
    check = judge(folder, "restart", "eaddrinuse-in-time-wait")
    assert not check.passed and "EACCES" in check.detail


def test_eaddrinuse_fails_when_the_client_closed_first(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)

    def drop_server_fin(eth: dpkt.ethernet.Ethernet, _: list[Any]) -> dpkt.ethernet.Ethernet | None:
        tcp = tcp_of(eth)
        from_server = tcp is not None and tcp.sport == 9000
        return None if from_server and tcp.flags & dpkt.tcp.TH_FIN else eth

    assert rewrite(server_pcap(folder), drop_server_fin) >= 1
    check = judge(folder, "restart", "eaddrinuse-in-time-wait")
    assert not check.passed and "TIME_WAIT goes to" in check.detail


def test_reuseaddr_rebinds_fails_when_the_restart_did_not_listen(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)
    assert judge(folder, "restart", "reuseaddr-rebinds").passed

    def exited(scenario: dict[str, Any]) -> None:
        scenario["restarts"][1].update(listening=False, listen_socket="", exit_status=1)

    _edit_run(folder, "restart", exited)
    check = judge(folder, "restart", "reuseaddr-rebinds")
    assert not check.passed and "did not listen" in check.detail


def test_reuseaddr_rebinds_fails_when_time_wait_was_already_gone(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    folder = copy_results(experiment_runs, "errors", tmp_path)
    _no_time_wait(folder, "restart-restart-2")
    check = judge(folder, "restart", "reuseaddr-rebinds")
    assert not check.passed and "0 TIME_WAIT on server:9000" in check.detail


def test_reuseaddr_does_not_rebind_over_a_time_wait_without_it(
    root: None, experiment_runs: Runs, tmp_path: Path
) -> None:
    """On Linux the TIME_WAIT socket keeps the SO_REUSEADDR of the listener that accepted
    it, and a new bind needs it on both: a first server without reuseaddr blocks even a
    restart with it. Real evidence, from a run of the experiment changed that way."""
    text = (EXPERIMENTS / "errors.yaml").read_text()
    changed = text.replace("port: 9000, options: {reuseaddr: true}}", "port: 9000}")
    assert changed != text
    topo = tmp_path / "errors-plain.yaml"
    topo.write_text(changed)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "lab.cli", "run", str(topo), "--backend", "netns"]
    argv += ["--out", str(out), "--json", "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    check = judge(out, "restart", "reuseaddr-rebinds")
    assert not check.passed
    assert "EADDRINUSE" in check.detail and "the first server had no reuseaddr" in check.detail
    assert judge(out, "restart", "eaddrinuse-in-time-wait").passed
