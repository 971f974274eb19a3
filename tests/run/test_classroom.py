"""The classroom case: many students' labs on one server at once, one of them killed
outright and one bare `lab clean` meanwhile. Every live lab must pass untouched; only the
killed one is cleaned (its objects gone, its evidence collected into its folder)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.labcli import ROOT, lab
from tests.leftovers import netns_objects, processes_of_run, run_id_of

LABS = 20
VICTIM = 7  # the lab whose `lab run` is killed
PROGRAMS = ("thread_server", "fork_server", "iterative_server", "dict_server")


def student_topology(folder: Path, i: int) -> Path:
    """A small lab of its own: its name, subnet, port, server program and hold (long
    enough that the others still run when the victim, perhaps the last to get there, has
    reached its scenario and `lab clean` meets them)."""
    program = PROGRAMS[i % len(PROGRAMS)]
    concurrency = 1 if program == "iterative_server" else 2
    send, expect = ("[hello]", "[你好]") if program == "dict_server" else ("[hi]", "[HI]")
    text = f"""name: class{i:02d}
networks:
  lan: {{subnet: 10.88.{i}.0/24}}
nodes:
  server: {{interfaces: {{lan: 10.88.{i}.10}}}}
  client: {{interfaces: {{lan: 10.88.{i}.{20 + i}}}}}
services:
  srv: {{node: server, program: {program}, port: {9100 + i}}}
scenarios:
  - name: talk
    service: srv
    clients: [client]
    send: {send}
    expect: {expect}
    concurrency: {concurrency}
    hold: {8 + i % 3}
capture: {{enabled: true, filter: "tcp"}}
"""
    path = folder / f"class{i:02d}.yaml"
    path.write_text(text)
    return path


def not_cleaned(said: str) -> set[str]:
    """The runs a bare `lab clean` could not remove. It sees the whole machine: one that is
    not this class's (a Docker network the engine keeps stuck, say) makes it exit 1, which
    says nothing about the class."""
    return set(re.findall(r"^\s+run ([0-9a-f]{6}): ", said, re.M))


def progress(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def wait_for(condition: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.exclusive
@pytest.mark.slow
def test_twenty_labs_one_killed_one_bare_clean(root: None, tmp_path: Path) -> None:
    started = time.monotonic()
    procs: list[subprocess.Popen[str]] = []
    outs = [tmp_path / f"out{i:02d}" for i in range(LABS)]
    logs = [tmp_path / f"class{i:02d}.log" for i in range(LABS)]
    try:
        for i in range(LABS):
            topo = student_topology(tmp_path, i)
            argv = [sys.executable, "-m", "lab.cli", "run", str(topo), "--backend", "netns"]
            with logs[i].open("w") as err:
                procs.append(
                    subprocess.Popen(
                        [*argv, "--out", str(outs[i])],
                        stdout=subprocess.PIPE,
                        stderr=err,
                        text=True,
                        cwd=ROOT,
                    )
                )
        victim = procs[VICTIM]
        wait_for(lambda: "snapshot: during" in progress(logs[VICTIM]), "the victim's scenario")
        victim.kill()
        victim.wait()
        dead_id = run_id_of(outs[VICTIM])
        assert netns_objects(dead_id), "the killed lab should have left its namespaces"
        cleaned = lab("clean")
        class_runs = {run_id_of(out) for out in outs if (out / "run.json").is_file()}
        stuck = not_cleaned(cleaned.stdout + cleaned.stderr)
        ok = cleaned.returncode == 0 or (bool(stuck) and not stuck & class_runs)
        assert ok, cleaned.stdout + cleaned.stderr
        assert netns_objects(dead_id) == [] and processes_of_run(dead_id) == []
        assert list(outs[VICTIM].glob("server/*.pcap")), "the killed lab's evidence was lost"
        record = json.loads((outs[VICTIM] / "run.json").read_text())
        assert record["cleaned"]["owner_alive"] is False
        spared_lines = [line for line in cleaned.stdout.splitlines() if "left alone:" in line]
        ours = {run_id_of(out) for out in outs if (out / "run.json").is_file()} - {dead_id}
        spared_at_clean = sum(any(f"run {rid} " in line for rid in ours) for line in spared_lines)
        # Not vacuous: the clean met labs of this test while they ran.
        assert spared_at_clean > 0, cleaned.stdout
        failures = []
        for i, proc in enumerate(procs):
            if i == VICTIM:
                continue
            stdout, _ = proc.communicate(timeout=300)
            if proc.returncode != 0 or "FAIL" in stdout:
                failures.append(f"class{i:02d}: exit {proc.returncode}\n{progress(logs[i])}")
            else:
                assert netns_objects(run_id_of(outs[i])) == []
        assert not failures, "\n".join(failures)
        assert netns_objects(dead_id) == []
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
        for out in outs:
            if (out / "run.json").is_file():
                lab("clean", "--run-id", run_id_of(out))
    print(
        f"\nclassroom: {LABS} labs, one killed, one bare clean (left {spared_at_clean} "
        f"running labs alone) in {time.monotonic() - started:.1f} s"
    )
