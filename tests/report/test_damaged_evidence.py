"""`lab report` on a results folder whose evidence files are damaged or are not files at
all: the damage is said (which file, which record, which byte) in the checks, summary.json
and report.html, nothing passes on it, and no file can hang the tool or eat its memory.

The folder is a replayed run of the default topology (no root needed), then damaged."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import dpkt
import pytest

from lab.report.summary import finish_run
from lab.run.backends.fake import fake_backend
from lab.run.backends.tape import TOPOLOGY_FILE
from lab.run.runner import run_lab
from lab.spec.topology import load_topology
from tests.labcli import lab

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
SERVER_PCAP = "server/eth0.pcap"


def _replay(name: str, base: Path) -> Path:
    os.environ["SOCKET_LAB_STATE"] = str(base / "state")
    try:
        topology = load_topology(RECORDINGS / name / TOPOLOGY_FILE)
        out = base / "out"
        run_lab(topology, fake_backend(RECORDINGS / name), out)
        assert finish_run(out, topology).passed
    finally:
        del os.environ["SOCKET_LAB_STATE"]
    return out


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _replay("default", tmp_path_factory.mktemp("damaged"))


@pytest.fixture
def folder(replayed: Path, tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(replayed, out)
    return out


def _records(pcap: bytes) -> list[tuple[int, int]]:
    """(offset, caplen) of every record of a little-endian classic pcap."""
    out, offset = [], 24
    while offset < len(pcap):
        caplen = struct.unpack_from("<I", pcap, offset + 8)[0]
        out.append((offset, caplen))
        offset += 16 + caplen
    return out


def _summary(folder: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((folder / "summary.json").read_text())
    return data


def _captured_checks(summary: dict[str, object]) -> list[dict[str, object]]:
    scenarios = summary["scenarios"]
    assert isinstance(scenarios, list)
    return [c for sc in scenarios for c in sc["checks"] if c["name"] == "captured"]


def _hashes(folder: Path) -> dict[str, str]:
    """Every entry of the folder: a file's SHA-256, a link's target, another kind's mode."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = oct(path.lstat().st_mode)
    return out


def test_capture_cut_mid_record_is_located_and_fails(folder: Path) -> None:
    pcap = folder / SERVER_PCAP
    data = pcap.read_bytes()
    offset, caplen = _records(data)[-5]
    pcap.write_bytes(data[: offset + 16 + caplen // 2])
    proc = lab("report", str(folder))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    number = len(_records(data)) - 4
    where = f"{SERVER_PCAP}: record {number} at byte {offset}: cut short"
    assert where in proc.stdout and "Traceback" not in proc.stderr
    summary = _summary(folder)
    assert summary["passed"] is False
    assert summary["evidence_problems"] == [
        {
            "file": SERVER_PCAP,
            "problem": f"cut short: {caplen // 2} of its {caplen} bytes",
            "offset": offset,
            "record": number,
            "fails_checks": True,
        }
    ]
    # Every scenario reads the server's capture: none of its captured checks passes.
    checks = _captured_checks(summary)
    assert checks and all(c["passed"] is False and where in str(c["detail"]) for c in checks)
    assert where in (folder / "report.html").read_text()


def test_capture_cut_to_its_header_fails_the_captured_checks(folder: Path) -> None:
    pcap = folder / SERVER_PCAP
    pcap.write_bytes(pcap.read_bytes()[:24])
    proc = lab("report", str(folder))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The clients' captures hold the traffic, but the server's own evidence is missing.
    checks = _captured_checks(_summary(folder))
    assert checks and all(c["passed"] is False for c in checks)
    assert all(
        "server/eth0.pcap (0 frames: only the file header)" in str(c["detail"]) for c in checks
    )
    assert "only the file header" in (folder / "report.html").read_text()


def test_record_claiming_4_gb_is_refused_before_anything_is_read(folder: Path) -> None:
    pcap = folder / SERVER_PCAP
    data = bytearray(pcap.read_bytes())
    offset, _ = _records(bytes(data))[1]
    data[offset + 8 : offset + 12] = struct.pack("<I", 0xFFFFFFF0)
    pcap.write_bytes(bytes(data))
    proc = lab("report", str(folder))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{SERVER_PCAP}: record 2 at byte {offset}: claims 4294967280 bytes" in proc.stdout
    problems = _summary(folder)["evidence_problems"]
    assert isinstance(problems, list) and [(p["record"], p["offset"]) for p in problems] == [
        (2, offset)
    ]
    assert "claims 4294967280 bytes" in (folder / "report.html").read_text()


def test_packets_tcpdump_said_it_dropped_are_said_in_the_checks_that_read_the_capture(
    folder: Path,
) -> None:
    """Every record of the capture is whole, but tcpdump's ring overflowed: the capture
    lacks packets, and every check that read it says so; nothing fails for it alone."""
    log = folder / "server" / "tcpdump-eth0.log"
    assert log.is_file()
    with log.open("a") as f:
        f.write("130 packets captured\n187 packets received by filter\n")
        f.write("57 packets dropped by kernel\n")
    proc = lab("report", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = "tcpdump dropped 57 packets: its kernel ring was full"
    assert f"{SERVER_PCAP}: {said}" in proc.stdout
    problems = _summary(folder)["evidence_problems"]
    assert isinstance(problems, list)
    (problem,) = problems
    assert problem["file"] == SERVER_PCAP and said in problem["problem"]
    assert problem["fails_checks"] is False
    checks = _captured_checks(_summary(folder))
    assert checks and all(c["passed"] is True and said in str(c["detail"]) for c in checks)
    assert said in (folder / "report.html").read_text()


def test_no_packets_dropped_is_no_problem(folder: Path) -> None:
    with (folder / "server" / "tcpdump-eth0.log").open("a") as f:
        f.write("0 packets dropped by kernel\n")
    proc = lab("report", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _summary(folder)["evidence_problems"] == []


def test_only_the_checks_that_read_the_damaged_file_fail(tmp_path: Path) -> None:
    folder = _replay("close", tmp_path)
    pcap = folder / "client" / "eth0.pcap"
    pcap.write_bytes(pcap.read_bytes()[:-10])
    proc = lab("report", str(folder))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    scenarios = _summary(folder)["scenarios"]
    assert isinstance(scenarios, list)
    failed = {(sc["name"], c["name"]) for sc in scenarios for c in sc["checks"] if not c["passed"]}
    # The claims are judged on the server's capture, intact; the client's is cut.
    assert failed == {("close", "captured"), ("half-close", "captured")}


def _as_pcapng(pcap: Path) -> bytes:
    reader = dpkt.pcap.Reader(pcap.open("rb"))
    out = Path(str(pcap) + ".ng")
    with out.open("wb") as f:
        writer = dpkt.pcapng.Writer(f, linktype=reader.datalink())
        for ts, buf in reader:
            writer.writepkt(buf, ts=ts)
    data = out.read_bytes()
    out.unlink()
    return data


def test_pcapng_capture_is_judged_and_its_damage_located(folder: Path) -> None:
    pcap = folder / SERVER_PCAP
    packets = sum(1 for _ in dpkt.pcap.Reader(pcap.open("rb")))  # the recording's own count
    ng = _as_pcapng(pcap)
    pcap.write_bytes(ng)
    proc = lab("report", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pcap.write_bytes(ng[:-30])  # the last enhanced packet block cut short
    proc = lab("report", str(folder))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    problems = _summary(folder)["evidence_problems"]
    assert isinstance(problems, list)
    (problem,) = problems
    assert problem["file"] == SERVER_PCAP and "block cut short" in problem["problem"]
    assert problem["record"] == packets and problem["offset"] > 0  # the last packet's


@pytest.mark.parametrize("kind", ["link to /dev/zero", "fifo", "huge"])
def test_unreadable_evidence_file_is_one_line_and_exit_2_and_nothing_written(
    folder: Path, kind: str
) -> None:
    if kind == "link to /dev/zero":
        target = folder / SERVER_PCAP
        target.unlink()
        target.symlink_to("/dev/zero")
        want = "a symbolic link (to /dev/zero)"
    elif kind == "fifo":
        target = folder / "server" / "snapshots" / "during.ps.txt"
        target.unlink()
        os.mkfifo(target)  # no writer: an open without O_NONBLOCK would block forever
        want = "a FIFO, not a regular file"
    else:
        target = folder / SERVER_PCAP
        with target.open("r+b") as f:
            f.truncate(65 * 1024 * 1024)  # sparse: 65 MiB on paper, nothing on disk
        want = "68157440 bytes, more than the 64 MiB the analysis reads"
    before = _hashes(folder)
    proc = lab("report", str(folder), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()  # one line: the file, its problem, the outcome
    assert line.startswith(f"lab: {target}: {want}"), proc.stderr
    assert line.endswith(f"nothing in {folder} was judged or written"), proc.stderr
    assert _hashes(folder) == before


def test_several_unreadable_files_are_still_one_line(folder: Path) -> None:
    pcap = folder / SERVER_PCAP
    pcap.unlink()
    pcap.symlink_to("/dev/zero")
    fifo = folder / "server" / "snapshots" / "during.ps.txt"
    fifo.unlink()
    os.mkfifo(fifo)
    before = _hashes(folder)
    proc = lab("report", str(folder), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"lab: {pcap}: a symbolic link (to /dev/zero)"), line
    assert "1 more file refused likewise: server/snapshots/during.ps.txt (a FIFO" in line, line
    assert _hashes(folder) == before


def test_snapshot_that_is_not_utf8_is_said_where_but_fails_nothing(folder: Path) -> None:
    snapshot = folder / "server" / "snapshots" / "during.ps.txt"
    # A program name in Latin-1, as `ps` prints it: the rest of the snapshot is evidence, and
    # a name's bytes are the program's own business, so no check fails for them.
    good = snapshot.read_bytes()
    snapshot.write_bytes(good + b"99999 1 S 1 /usr/bin/caf\xe9 --\xff\n")
    proc = lab("report", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "UnicodeDecodeError" not in proc.stdout
    rel = "server/snapshots/during.ps.txt"
    offset = len(good) + len(b"99999 1 S 1 /usr/bin/caf")
    where = f"{rel}: at byte {offset}: not UTF-8 (2 places read as U+FFFD)"
    assert where in proc.stdout, proc.stdout
    summary = _summary(folder)
    assert summary["passed"] is True
    assert summary["evidence_problems"] == [
        {
            "file": rel,
            "problem": "not UTF-8 (2 places read as U+FFFD)",
            "offset": offset,
            "record": None,
            "fails_checks": False,
        }
    ]
    scenarios = summary["scenarios"]
    assert isinstance(scenarios, list)
    noted = [c for sc in scenarios for c in sc["checks"] if where in str(c["detail"])]
    assert noted and all(c["passed"] is True for c in noted)
    assert where in (folder / "report.html").read_text()
