"""The user's programs and the restarts in a compose file: each node that runs a program
builds it from sources it can reach (the image's for ``lab:``, a read-only bind mount for
the user's own), runs it bounded as ``lab run`` does, and a restart is its node's step.
The node program itself builds for real here (the host's compiler), and restarts a real
server between two network namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from lab.deploy.compose import compose_dict
from lab.deploy.compose_user import SHIPPED_IN_IMAGE, SOURCES_IN_CONTAINER, TMPFS_EXEC
from lab.programs import compose_record
from lab.programs.userprog import bounded
from lab.spec.topology import load_topology
from tests.compose.test_compose import REPO, jobs_of
from tests.compose.test_compose_spec import validate
from tests.userprog.topo import write

PROGRAMS = """\
programs:
  my-fork:
    sources: [student/server.c, student/wrap.c, student/wrap.h]
    model: fork
  cli:
    sources: [lab:c/str_cli.c, lab:c/wrap.c, lab:c/wrap.h]
services:
  s: {node: server, program: my-fork, port: 9999}
scenarios:
  - {name: echo, service: s, clients: [c1], client_program: cli, send: [hi], expect: [HI]}
"""
NODE_TIMEOUT = 120.0  # an upper bound for a node program to end, never a speed assertion


def options(entry: dict[str, Any], name: str) -> list[str]:
    command = [str(w) for w in entry["command"]]
    return [command[i + 1] for i, word in enumerate(command) if word == name]


def builds(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(text) for text in options(entry, "--build")]


def test_each_node_builds_what_it_runs_from_sources_it_can_reach(tmp_path: Path) -> None:
    path = write(tmp_path, PROGRAMS)
    data = compose_dict(load_topology(path))
    validate(data)
    server, client, idle = (data["services"][n] for n in ("server", "c1", "c2"))
    (build,) = builds(server)
    assert build["name"] == "my-fork" and build["keep"] is True
    assert build["build"][0] == "cc" and build["folder"] == "/tmp/programs/my-fork"
    student = tmp_path / "student"
    mounted = {v["source"]: v for v in server["volumes"] if isinstance(v, dict)}
    assert set(mounted) == {str(student / n) for n in ("server.c", "wrap.c", "wrap.h")}
    for source, volume in mounted.items():
        assert volume["type"] == "bind" and volume["read_only"] is True
        assert volume["target"] == f"{SOURCES_IN_CONTAINER}/my-fork/{Path(source).name}"
    assert build["sources"] == [mounted[str(student / n)]["target"] for n in ("server.c",
                                "wrap.c", "wrap.h")]  # fmt: skip
    assert build["written"] == ["student/server.c", "student/wrap.c", "student/wrap.h"]
    # The shipped client's sources are the image's copy: nothing of the host is mounted.
    (cli,) = builds(client)
    assert cli["sources"] == [f"{SHIPPED_IN_IMAGE}/c/{n}" for n in ("str_cli.c", "wrap.c",
                              "wrap.h")]  # fmt: skip
    assert client["volumes"] == ["./results:/lab-results"]
    for entry in (server, client):
        assert entry["tmpfs"] == [TMPFS_EXEC]
        assert options(entry, "--builders") == ["server,c1"]
    assert idle["tmpfs"] == ["/tmp"] and options(idle, "--builders") == ["server,c1"]
    # The node signals its programs, which run as nobody, and reads their sockets and
    # descriptors in /proc: only where they run, server and client alike.
    for entry in (server, client):
        assert {"KILL", "DAC_READ_SEARCH", "SYS_PTRACE"} <= set(entry["cap_add"])
    assert not {"KILL", "DAC_READ_SEARCH", "SYS_PTRACE"} & set(idle["cap_add"])
    assert builds(idle) == []
    # Run bounded and unprivileged, as lab run runs them.
    ((_, _, serve),) = jobs_of(server)
    assert list(serve) == bounded("python3", "/tmp/programs/my-fork", ["./my-fork", "9999"])
    assert options(server, "--user-service") == ["s"]
    ((_, _, drive),) = jobs_of(client)
    cut = drive.index("--")
    assert drive[:3] == ("python3", "-m", "lab.programs.userclient")
    assert list(drive[cut + 1 :]) == bounded(
        "python3", "/tmp/programs/cli", ["./cli", "10.77.9.10", "9999"]
    )


def test_the_image_holds_the_shipped_sources_where_the_file_looks() -> None:
    dockerfile = (REPO / "lab" / "data" / "images" / "node.Dockerfile").read_text()
    assert f"COPY lab {SHIPPED_IN_IMAGE.removesuffix('/programs')}\n" in dockerfile
    topology = load_topology(REPO / "topologies" / "experiments" / "bug-sigchld-race.yaml")
    for entry in compose_dict(topology)["services"].values():
        for build in builds(entry):
            for source in build["sources"]:
                rel = Path(source).relative_to(SHIPPED_IN_IMAGE)
                assert (REPO / "lab" / "programs" / rel).is_file(), source


def test_a_restart_is_the_step_of_the_service_node() -> None:
    topology = load_topology(REPO / "topologies" / "experiments" / "errors.yaml")
    services = compose_dict(topology)["services"]
    assert options(services["client"], "--restart") == []
    restarts = [json.loads(t) for t in options(services["server"], "--restart")]
    service = topology.service("restartable")
    assert [(r["scenario"], r["index"], r["reuseaddr"], r["expect"]) for r in restarts] == [
        ("restart", 1, False, "EADDRINUSE"),
        ("restart", 2, True, None),
    ]
    for r in restarts:
        again = service.with_option("reuseaddr", r["reuseaddr"])
        assert r["argv"] == ["python3", "-m", "lab.programs.fork_server", *again.args()]
        assert (r["service"], r["protocol"], r["port"]) == ("restartable", "tcp", 9000)


# -- the node program, for real ------------------------------------------------------------


def on_host(command: list[str], places: dict[str, str]) -> list[str]:
    """A node's command run on this host: the container's paths put where the test has
    them (inside JSON options too), this interpreter for ``python3``."""
    words = [str(w) for w in command]
    out = []
    for word in words:
        for container, host in places.items():
            word = word.replace(container, host)
        out.append(word)
    return [sys.executable, *out[1:]] if out[0] == "python3" else out


def test_a_compile_error_stops_every_node_before_anything_starts(tmp_path: Path) -> None:
    body = PROGRAMS.replace("student/server.c, student/wrap.c, student/wrap.h", "student/broken.c")
    data = compose_dict(load_topology(write(tmp_path, body)))
    results = tmp_path / "results"
    (results / "compose" / ".sync").mkdir(parents=True)
    places = {
        "/lab-results": str(results),
        f"{SOURCES_IN_CONTAINER}/my-fork": str(tmp_path / "student"),
        "/tmp/programs": str(tmp_path / "build"),
        SHIPPED_IN_IMAGE: str(REPO / "lab" / "programs"),
    }
    nodes = {
        name: subprocess.Popen(
            on_host(data["services"][name]["command"], places),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("server", "c1", "c2")
    }
    ended = {name: proc.communicate(timeout=NODE_TIMEOUT) for name, proc in nodes.items()}
    codes = {name: proc.returncode for name, proc in nodes.items()}
    assert all(code != 0 for code in codes.values()), codes
    _, stderr = ended["server"]
    # The compiler's own message, with the path as the topology wrote it.
    assert "build my-fork| student/broken.c:4:34: error: expected" in stderr, stderr
    log = (results / "compose" / "server" / "build-my-fork.log").read_text()
    assert "student/broken.c:4:34: error" in log and "exit status 1" in log
    assert "did not build on server: nothing was run" in ended["c2"][1]
    for name in nodes:  # no node went on to its first snapshot
        facts = json.loads((results / "compose" / name / "node.json").read_text())
        assert facts["phases"] == [], name
        assert not (results / "compose" / name / "snapshots").exists()
    assert not list(results.rglob("*.pcap"))


ERRORS = """\
name: restart-on-host
networks:
  lan: {subnet: 10.99.7.0/24}
nodes:
  server: {interfaces: {lan: 10.99.7.1}}
  client: {interfaces: {lan: 10.99.7.2}}
services:
  restartable: {node: server, program: fork_server, port: 9000, options: {reuseaddr: true}}
scenarios:
  - name: restart
    service: restartable
    clients: [client]
    probe: long-line
    restart:
      - {reuseaddr: false, expect: EADDRINUSE}
      - {reuseaddr: true}
    claims: [eaddrinuse-in-time-wait, reuseaddr-rebinds]
capture: {enabled: true, filter: "tcp"}
"""


def test_the_service_node_restarts_its_server_and_lab_report_judges_it(
    two_namespaces: tuple[str, str], tmp_path: Path
) -> None:
    from lab.report.summary import regenerate

    path = tmp_path / "restart.yaml"
    path.write_text(ERRORS)
    data = compose_dict(load_topology(path))
    results = tmp_path / "results"
    (results / "compose" / ".sync").mkdir(parents=True)
    places = {"/lab-results": str(results)}
    nodes = {
        name: subprocess.Popen(
            ["ip", "netns", "exec", ns, *on_host(data["services"][name]["command"], places)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, ns in zip(("server", "client"), two_namespaces, strict=True)
    }
    ended = {name: proc.communicate(timeout=NODE_TIMEOUT) for name, proc in nodes.items()}
    assert all(p.returncode == 0 for p in nodes.values()), ended
    command = [str(w) for w in data["services"]["report"]["command"]]
    plan = json.loads(command[command.index("--plan") + 1])
    out = results / "compose"
    facts = {n: json.loads((out / n / "node.json").read_text()) for n in ("server", "client")}
    (out / "topology.yaml").write_text(plan["text"])
    (out / "run.json").write_text(json.dumps(compose_record.run_record(plan, facts)))
    summary = regenerate(out)
    checks = {c.name: (c.passed, c.detail) for s in summary.scenarios for c in s.checks}
    assert summary.passed, checks
    assert {"restarts", "EADDRINUSE in TIME_WAIT", "SO_REUSEADDR rebinds"} <= set(checks)
    run = json.loads((out / "run.json").read_text())
    first, second = run["scenarios"]["restart"]["restarts"]
    assert (first["listening"], first["exit_status"], second["listening"]) == (False, 1, True)
    assert run["services"]["restartable"]["restarted_as"] == [second["pid"]]
    assert (out / "server" / "snapshots" / "restart-restart-1.ss.txt").stat().st_size > 0
