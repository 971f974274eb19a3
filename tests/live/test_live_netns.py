"""The live lab on netns, as a student uses it: ``lab up``, a shell on a client, ``nc`` to
the fork server by hand, ``lab exec``, ``lab capture``, ``lab snapshot``, ``lab down`` and
the report; two labs at once; a lab whose supervisor was killed; a shell killed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.labcli import ROOT, lab
from tests.live.conftest import kill_supervisor
from tests.live.terminal import Terminal, up_at_terminal

DEFAULT = "lab/data/topologies/default.yaml"
SERVER = "10.77.1.10"


def up(
    tmp_path: Path, env: dict[str, str], out: str, *extra: str, file: str = DEFAULT
) -> dict[str, object]:
    """``lab up`` through a terminal: it prints the table and returns to the prompt."""
    up_at_terminal(file, "--backend", "netns", "--out", str(tmp_path / out), *extra, env=env)
    states = [json.loads(p.read_text()) for p in (tmp_path / "state" / "live").glob("*.json")]
    return next(s for s in states if s["out"] == str((tmp_path / out).resolve()))


def namespaces(run_id: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [
        line for line in out.splitlines() if f"slab-{run_id}-" in line and "_switch" not in line
    ]


def test_walkthrough_by_hand(tmp_path: Path, env: dict[str, str]) -> None:
    state = up(tmp_path, env, "out")
    rid = str(state["run_id"])
    assert len(namespaces(rid)) == 3  # the lab stayed up after `lab up` returned

    shell = Terminal("shell", "client1", env=env)
    try:
        shell.expect("[default:client1]")
        shell.send(f"nc {SERVER} 9999\n")
        time.sleep(0.5)  # let nc connect before typing (the reply proves it did)
        shell.send("hello by hand\n")
        shell.expect("HELLO BY HAND")
        # While nc holds the connection: netstat on the client shows it ESTABLISHED.
        netstat = lab("exec", "client1", "--", "netstat", "-tn", env=env)
        assert netstat.returncode == 0, netstat.stderr
        row = next(r for r in netstat.stdout.splitlines() if f"{SERVER}:9999" in r)
        assert "ESTABLISHED" in row
        client_port = row.split()[3].rsplit(":", 1)[1]
        snap = lab("snapshot", "held", env=env)
        assert snap.returncode == 0, snap.stderr
        shell.send("\x03")  # Ctrl-C ends nc, not the shell and not the lab
        shell.expect("[default:client1]")
        assert lab("exec", "client1", "--", "true", env=env).returncode == 0
        shell.send("exit 0\n")
        assert shell.wait() == 0
    finally:
        shell.close()

    assert lab("exec", "server", "--", "sh", "-c", "exit 7", env=env).returncode == 7
    with_tty = Terminal("exec", "-t", "client1", "--", "sh", "-c", "tty; exit 3", env=env)
    try:
        with_tty.expect("/dev/pts/")
        assert with_tty.wait() == 3
    finally:
        with_tty.close()
    echoed = subprocess.run(
        [sys.executable, "-m", "lab.cli", "exec", "client1", "--", "tr", "a-z", "A-Z"],
        input="piped stdin\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    assert (echoed.returncode, echoed.stdout) == (0, "PIPED STDIN\n")

    down = lab("down", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "report:" in down.stdout
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    by_hand = [c for c in summary["connections"] if str(c["client"]["port"]) == client_port]
    assert len(by_hand) == 1
    conn = by_hand[0]
    assert conn["server"]["port"] == 9999 and conn["handshake"]["ok"]
    assert [s["flags"] for s in conn["segments"][:3]] == [["SYN"], ["SYN", "ACK"], ["ACK"]]
    assert "HELLO BY HAND" in "".join(s["payload"] for s in conn["segments"])
    assert summary["scenarios"] == []  # none was run: none is judged
    held = (out / "client1" / "snapshots" / "held.netstat.txt").read_text()
    assert re.search(rf"{SERVER}:9999\s+ESTABLISHED", held)
    for phase in ("before", "final"):
        assert (out / "server" / "snapshots" / f"{phase}.ss.txt").is_file()
    report = (out / "report.html").read_text()
    assert client_port in report
    again = lab("report", str(out), env=env)  # judged again: the same live lab's verdict
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((out / "summary.json").read_text())["scenarios"] == []
    assert "<th>held</th>" in report  # the hand snapshot, among the phases of the states
    assert namespaces(rid) == []
    assert rid not in lab("ls", env=env).stdout


def test_scenario_and_capture_read_back(tmp_path: Path, env: dict[str, str]) -> None:
    up(tmp_path, env, "out")
    pcap = tmp_path / "server.pcap"
    capture = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "capture", "server", "eth0", "-w", str(pcap)],
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    streamed = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "capture", "default", "client2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        for proc in (capture, streamed):
            assert proc.stderr is not None
            assert b"listening on" in proc.stderr.readline()
        ran = lab("scenario", "fork-echo", env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        by_hand = lab(
            "exec", "client2", "--", "sh", "-c", f"echo x | nc -q1 {SERVER} 8000", env=env
        )
        assert by_hand.stdout == "X\n"
    finally:
        for proc in (capture, streamed):
            proc.send_signal(signal.SIGINT)  # tcpdump flushes and ends
        capture.wait(timeout=10)
        raw = streamed.communicate(timeout=10)[0]
    read = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tcp.flags.syn==1 && tcp.port==9999"],
        capture_output=True,
        text=True,
    )
    assert read.returncode == 0 and len(read.stdout.splitlines()) == 12  # 6 SYN + 6 SYN-ACK
    piped = subprocess.run(
        ["tshark", "-r", "-", "-Y", "tcp.port==8000"], input=raw, capture_output=True
    )
    assert b"8000" in piped.stdout
    again = lab("scenario", "fork-echo", env=env)
    assert again.returncode == 2 and "already" in again.stderr
    down = lab("down", "default", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [s["name"] for s in summary["scenarios"]] == ["fork-echo"]
    assert summary["scenarios"][0]["passed"]


def test_two_labs_at_once(tmp_path: Path, env: dict[str, str]) -> None:
    first = up(tmp_path, env, "one")
    second = up(tmp_path, env, "two")
    assert (first["name"], second["name"]) == ("default", "default-2")
    vague = lab("exec", "client1", "--", "true", env=env)
    assert vague.returncode == 2 and "name one" in vague.stderr
    listed = lab("ls", env=env).stdout
    assert "live lab default," in listed and "live lab default-2," in listed
    # Each lab's node is its own namespace: the same address answers in each.
    for which in ("default", str(second["run_id"])):
        reply = lab(
            "exec", which, "client1", "--", "sh", "-c", f"echo a | nc -q1 {SERVER} 9999", env=env
        )
        assert reply.stdout == "A\n"
    assert lab("down", "default-2", env=env).returncode == 0
    assert namespaces(str(second["run_id"])) == [] and len(namespaces(str(first["run_id"]))) == 3
    assert lab("down", env=env).returncode == 0  # now the only one
    assert namespaces(str(first["run_id"])) == []


def test_stale_lab_is_cleaned_by_down(tmp_path: Path, env: dict[str, str]) -> None:
    state = up(tmp_path, env, "out")
    rid = str(state["run_id"])
    kill_supervisor(state)  # a killed supervisor, as after a crash
    refused = lab("exec", "client1", "--", "true", env=env)
    assert refused.returncode == 1 and "stale" in refused.stderr
    assert "stale (run `lab down default`)" in lab("ls", env=env).stdout
    down = lab("down", env=env)
    assert "stale" in down.stderr
    assert down.returncode == 1  # the run did not end as it should: its report says so
    assert namespaces(rid) == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "lab clean" in str(summary["error"])
    assert (tmp_path / "out" / "server" / "eth0.pcap").is_file()  # the evidence collected
    assert list((tmp_path / "state" / "live").glob("*")) == []


def test_stale_lab_is_cleaned_by_clean(tmp_path: Path, env: dict[str, str]) -> None:
    state = up(tmp_path, env, "out")
    kill_supervisor(state)
    cleaned = lab("clean", "--run-id", str(state["run_id"]), env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "live lab default: stale state" in cleaned.stdout
    assert namespaces(str(state["run_id"])) == []
    assert str(state["run_id"]) not in lab("ls", env=env).stdout


def test_killed_shell_leaves_the_lab_up(tmp_path: Path, env: dict[str, str]) -> None:
    up(tmp_path, env, "out")
    shell = Terminal("shell", "server", env=env)
    try:
        shell.expect("[default:server]")
        shell.send("\x04")  # Ctrl-D ends the shell only
        assert shell.wait() == 0
    finally:
        shell.close()
    shell = Terminal("shell", "server", env=env)
    try:
        shell.expect("[default:server]")
        os.kill(shell.proc.pid, signal.SIGKILL)
        assert shell.proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        shell.close()
    alive = lab("exec", "server", "--", "ss", "-Hltn", "sport", "=", ":9999", env=env)
    assert alive.returncode == 0 and "LISTEN" in alive.stdout
    down = lab("down", env=env)
    assert down.returncode == 0, down.stdout + down.stderr


def test_bad_input_on_a_live_lab(tmp_path: Path, env: dict[str, str]) -> None:
    up(tmp_path, env, "out")
    cases = [
        (("exec", "nosuch", "--", "true"), "no node 'nosuch'"),
        (("exec", "client1"), "no command given"),
        (("snapshot", "final"), "not one of"),
        (("scenario", "nosuch"), "no scenario 'nosuch'"),
        (("capture", "server", "eth9", "-w", str(tmp_path / "x.pcap")), "no interface 'eth9'"),
        # a real host's interface name, not taken for a lab's
        (("capture", "server", "ens3", "-w", str(tmp_path / "x.pcap")), "no interface 'ens3'"),
        (("capture", "default", "server", "ens3"), "no interface 'ens3'"),
        (("down", "nosuch"), "no live lab 'nosuch'"),
        (("exec", "-t", "client1", "--", "true"), "stdin is not a terminal"),
    ]
    for args, message in cases:
        result = lab(*args, env=env)
        assert (result.returncode, message in result.stderr) == (2, True), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    # A host without telnet: the nodes of a netns lab use the host's tools, so it is named
    # with its package, and the exit status is a shell's for a command not found.
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "ip").symlink_to(shutil.which("ip") or "/usr/sbin/ip")
    missing = lab("exec", "client1", "--", "telnet", SERVER, "9999", env={**env, "PATH": str(bare)})
    assert missing.returncode == 127
    assert "telnet: not installed on this host" in missing.stderr
    assert "apt-get install telnet" in missing.stderr
    assert lab("down", env=env).returncode == 0
