"""An engine that stops answering mid-run: the run fails naming it, the other engine is
cleaned, the evidence gathered so far is kept; once the engine is back, `lab clean
--engines` removes what was left there. The second engine is killed for real (SIGKILL)
and started again on its folders, so the session's swarm goes on for the other tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from lab.run.backends.docker import RUN_LABEL
from tests.labcli import ROOT, lab
from tests.leftovers import run_id_of
from tests.swarm.twoengines import TwoEngines


def objects(url: str, run_id: str) -> list[str]:
    client = docker.DockerClient(base_url=url)
    try:
        match = {"label": f"{RUN_LABEL}={run_id}"}
        found = [
            f"container {c['Names'][0]}" for c in client.api.containers(all=True, filters=match)
        ]
        return found + [f"network {n['Name']}" for n in client.api.networks(filters=match)]
    finally:
        client.close()


@pytest.mark.slow
def test_a_killed_engine_is_named_and_the_other_cleaned(
    two_engines: TwoEngines, tmp_path: Path
) -> None:
    engines = two_engines.engines_file(tmp_path)
    out = tmp_path / "lost"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "run", str(ROOT / "topologies" / "default.yaml"),
         "--backend", "swarm", "--engines", str(engines), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "snapshot: before" in line:
                two_engines.kill_worker()
                break
        _, rest = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        if two_engines.pid is None:
            two_engines.restart_worker()
    said = "".join(seen) + rest
    assert any("snapshot: before" in line for line in seen), said
    assert proc.returncode == 1, said
    assert two_engines.worker_host in rest, said
    # Each failed command on a lost node says where that node was.
    assert f"is on engine {two_engines.worker_host} ({two_engines.worker_url})" in said
    run_id = run_id_of(out)
    run = json.loads((out / "run.json").read_text())
    assert any(two_engines.worker_host in str(e) for e in run.get("teardown_errors", [])), run
    # The manager's nodes were collected: their evidence is kept.
    placed = {n: str(r.get("host")) for n, r in run["nodes"].items()}
    on_manager = [n for n, h in placed.items() if h.endswith(two_engines.manager_host)]
    assert on_manager and all((out / n).is_dir() for n in on_manager), placed
    assert [o for o in objects(two_engines.manager_url, run_id) if o.startswith("container")] == []
    # Back again: what the killed engine still had goes with `lab clean`.
    done = lab("clean", "--engines", str(engines), "--run-id", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert objects(two_engines.worker_url, run_id) == []
    assert objects(two_engines.manager_url, run_id) == []
