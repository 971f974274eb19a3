"""The report's pictures for the window, iterative and errors experiments, from real runs
on network namespaces: every mark is counted against what the analysis finds in the
capture itself (or run.json and the snapshots), and the pages are rendered by headless
Chromium, whose own DOM must hold the same marks."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.evidence.analysis import TcpConnection, parse_sockets, read_packets, tcp_connections
from lab.evidence.records import TcpRecord
from lab.report.connections_html import DIAGRAMS_PER_SCENARIO
from lab.report.figures import TIMELINE_ROWS
from lab.report.page import render_report
from lab.report.record import Summary
from lab.report.sequence import DATA_HEAD, KEY_ARROWS
from lab.run.record import NodeRecord
from lab.spec.model import Interface, Network, Node, Scenario, Service, Topology
from tests.conftest import require
from tests.report.conftest import Results
from tests.report.png import read_png
from tests.report.test_html import parse

pytestmark = pytest.mark.netns


def _analysed(res: Results, record: TcpRecord) -> TcpConnection:
    """The record's connection as the analysis reads it from the record's own capture."""
    client = record.client
    packets = read_packets(res.out / record.evidence)
    same = [
        c
        for c in tcp_connections(packets)
        if (c.client.ip, c.client.port) == (client.ip, client.port)
    ]
    # A client port can carry two connections in one capture (reused after TIME_WAIT, with
    # new ISNs), as the evidence's own grouping knows: the record's ISN says which is its.
    isn = record.handshake.client_isn
    if isn is not None:
        same = [c for c in same if c.handshake.client_isn == isn]
    assert same, f"{record.id}: no connection from {client.ip}:{client.port} in {record.evidence}"
    return min(same, key=lambda c: abs(c.start_time - record.start))


def _block(page: str, conn_id: str) -> str:
    """The page's HTML of one connection (its summary row to the end of its details)."""
    start = page.index(f"<span class=id>{conn_id}</span>")
    return page[start : page.index("</details>", page.index("packet table", start))]


def _scenario_html(page: str, name: str) -> str:
    start = page.index(f'id="sc-{name}"')
    return page[start : page.index("</section>", start)]


# -- window -------------------------------------------------------------------------------------


def test_window_records_count_probes_and_keep_them(root: None, window_run: Results) -> None:
    [record] = window_run.connections
    conn = _analysed(window_run, record)
    assert conn.zero_window_probes, "the experiment made no probes"
    assert record.zero_window_probes == len(conn.zero_window_probes)
    assert record.zero_windows == len(conn.zero_windows)
    assert record.window_updates == len(conn.window_updates)
    assert record.syn_retransmissions == conn.handshake.syn_retransmissions == 0
    events = [*conn.zero_windows, *conn.zero_window_probes, *conn.window_updates]
    assert sorted((e.index, e.kind) for e in record.window_events) == sorted(
        (e.index, e.kind) for e in events
    )
    # A long connection: the middle is left out, but every window event's segment is kept.
    assert record.segments_omitted > 0
    kept = {s.index for s in record.segments}
    assert {e.index for e in events} <= kept
    positions = [s.pos for s in record.segments]
    assert positions == sorted(set(positions))
    assert len(positions) + record.segments_omitted == record.segment_count
    # The chart's series: the client's window, ending open, reaching 0.
    series = record.window_series["client"]
    assert min(w for _, w in series) == 0 and series[-1][1] > 0


def test_window_chart_and_diagram_mark_every_event(root: None, window_run: Results) -> None:
    [record] = window_run.connections
    conn = _analysed(window_run, record)
    events = [*conn.zero_windows, *conn.zero_window_probes, *conn.window_updates]
    block = _block(window_run.page, record.id)
    p = parse(block)
    assert p.count("svg", "window") == 1
    assert p.count("path", "probe-mark") == len(conn.zero_window_probes)
    assert p.count("circle", "zw-mark") == len(conn.zero_windows)
    assert p.count("g", "update-mark") == len(conn.window_updates)
    # The closed span is shaded, its length the time from the first zero to the update.
    assert p.count("rect", "closed") >= 1
    # In the sequence diagram: one highlighted arrow per event, labelled.
    # (Up to KEY_ARROWS highlighted segments of the data phase; a loaded host can make more.)
    drawn = {k: p.count("g", f"hl-{k}") for k in ("probe", "zw", "update")}
    found = {
        "probe": len(conn.zero_window_probes),
        "zw": len(conn.zero_windows),
        "update": len(conn.window_updates),
    }
    if len(events) + len(conn.retransmissions) <= KEY_ARROWS:
        assert drawn == found
    else:
        assert all(0 < drawn[k] <= found[k] for k in ("probe", "zw"))
    assert block.count(">zero-window probe") == drawn["probe"]
    # The long data phase is elided: drawn arrows and elided counts add up to every segment.
    at = block.index("<svg class=seq")
    seq = block[at : block.index("</svg>", at)]
    arrows = parse(seq).count("g", "arrow")
    elided = [int(n) for n in re.findall(r"… (\d+) segments? …", seq)]
    assert elided
    assert arrows + sum(elided) == len(conn.segments)
    # The handshake, a few data segments, each event with the one before it, the close.
    assert arrows <= 3 + DATA_HEAD + 2 * min(len(events), KEY_ARROWS) + 4


# -- iterative ----------------------------------------------------------------------------------


def test_iterative_timelines_show_the_queue_and_syn_retransmissions(
    root: None, iterative_run: Results
) -> None:
    page = iterative_run.page
    at = page.index('id="timelines"')
    section = page[at : page.index("</section>", at)]
    p = parse(section)
    services = {s.name for s in iterative_run.topology.services}
    assert p.count("svg", "gantt") == len(services) == 2
    retransmitted = 0
    for record in iterative_run.connections:
        conn = _analysed(iterative_run, record)
        assert record.syn_retransmissions == conn.handshake.syn_retransmissions
        retransmitted += conn.handshake.syn_retransmissions
    assert retransmitted > 0
    assert p.count("path", "syn-rt") == retransmitted
    # One row per connection, and the queued ones waited at least a second, connected.
    assert p.count("g", "grow") == len(iterative_run.connections)
    waits = [float(x) for x in re.findall(r"<title>in accept queue ([\d.]+) s</title>", section)]
    queued = [c for c in iterative_run.connections if c.scenario in {"second", "queued"}]
    assert len([w for w in waits if w >= 1.0]) == len(queued) == 3
    dropped = [c for c in iterative_run.connections if c.scenario == "dropped"]
    for c in dropped:
        row = section[section.index(f"{c.id} dropped") :]
        row = row[: row.index("</g>")]
        assert row.count("class=syn-rt") == c.syn_retransmissions > 0


# -- errors -------------------------------------------------------------------------------------


def test_errors_refused_and_epipe_sequences(root: None, errors_run: Results) -> None:
    page = errors_run.page
    [refused] = [c for c in errors_run.connections if c.scenario == "refused"]
    block = _block(page, refused.id)
    assert "RST answers the SYN: port closed" in block
    assert "connect() → ECONNREFUSED" in block
    assert parse(block).count("g", "err") == 1
    [epipe] = [c for c in errors_run.connections if c.scenario == "epipe"]
    block = _block(page, epipe.id)
    order = [
        block.index("FIN, ACK"),
        block.index("data after the server&#x27;s FIN"),
        block.index("RST answers data sent after its FIN"),
        block.index("send() → EPIPE"),
    ]
    assert order == sorted(order)


def test_errors_restart_timeline_matches_run_json_and_snapshots(
    root: None, errors_run: Results
) -> None:
    section = _scenario_html(errors_run.page, "restart")
    restarts = errors_run.run["scenarios"]["restart"]["restarts"]
    p = parse(section)
    assert p.count("svg", "restarts") == 1
    assert p.count("g", "failed") == sum(1 for r in restarts if not r["listening"]) == 1
    assert p.count("g", "bound") == sum(1 for r in restarts if r["listening"]) == 1
    service = errors_run.topology.service("restartable")
    for r in restarts:
        text = (errors_run.out / service.node / "snapshots" / f"{r['snapshot']}.ss.txt").read_text()
        n = sum(
            1
            for row in parse_sockets(text)
            if row.state == "TIME_WAIT" and row.local.port == service.port
        )
        assert n >= 1
        assert f"TIME_WAIT on {service.node}:{service.port}: {n} socket" in section
    assert "bind failed: EADDRINUSE, exit 1" in section
    assert "listens: LISTEN 0.0.0.0:9000" in section


# -- the backend and the ssh hosts --------------------------------------------------------------


def test_ssh_hosts_are_shown(tmp_path: Path) -> None:
    topo = Topology(
        name="t",
        description="",
        networks=(Network("lan", IPv4Network("10.0.0.0/24")),),
        nodes=(
            Node("a", (Interface("lan", IPv4Address("10.0.0.1")),)),
            Node("b", (Interface("lan", IPv4Address("10.0.0.2")),)),
        ),
        services=(Service("s", "a", "fork_server", 9999),),
        scenarios=(Scenario("sc", "s", ("b",), ("x",), ("X",)),),
    )
    nodes = {
        "a": NodeRecord({"lan": "eth1"}, "lab@h1.example:2222"),
        "b": NodeRecord({"lan": "ens3"}, "root@10.1.2.3:22"),
    }
    summary = Summary("t", "ssh", "r", "s", passed=True, nodes=nodes)
    page = render_report(tmp_path, summary, topo)
    header = page[: page.index("</header>")]
    assert "<dd>ssh</dd>" in header
    assert "a on lab@h1.example:2222, b on root@10.1.2.3:22" in header
    topo_svg = page[page.index("<svg class=topo") :]
    assert ">on lab@h1.example:2222</text>" in topo_svg
    assert ">on root@10.1.2.3:22</text>" in topo_svg
    netns = render_report(tmp_path, replace(summary, backend="netns", nodes={}), topo)
    assert "<dt>hosts</dt>" not in netns and "<dd>netns</dd>" in netns


# -- Chromium -------------------------------------------------------------------------------


def _chromium(page: str, tmp_path: Path) -> tuple[str, Path]:
    """The DOM Chromium built from the page, and a screenshot of it."""
    browser = shutil.which("chromium")
    require(browser is not None, "needs chromium (apt-get install -y chromium)")
    assert browser is not None
    report = tmp_path / "report.html"
    report.write_text(page)
    shot = tmp_path / "shot.png"
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,4000"]
    proc = subprocess.run(
        [*common, f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = subprocess.run(
        [*common, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout, shot


def _has_colour(shot: Path, rgb: tuple[int, int, int]) -> bool:
    width, _, bpp, rows = read_png(shot)
    want = bytes(rgb)
    return any(row[x * bpp : x * bpp + 3] == want for row in rows for x in range(width))


@pytest.mark.parametrize(
    ("fixture", "tag", "cls", "colour"),
    [
        ("window_run", "path", "probe-mark", (0xBC, 0x4C, 0x00)),  # the probes' diamonds
        ("iterative_run", "path", "syn-rt", (0xF5, 0xC5, 0x42)),  # the accept-queue bars
        ("errors_run", "g", "failed", (0xDA, 0xFB, 0xE1)),  # the restart that listens
    ],
)
def test_chromium_draws_the_experiment_figures(
    root: None,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fixture: str,
    tag: str,
    cls: str,
    colour: tuple[int, int, int],
) -> None:
    res: Results = request.getfixturevalue(fixture)
    dom, shot = _chromium(res.page, tmp_path)
    assert parse(dom).count(tag, cls) == parse(res.page).count(tag, cls) > 0
    width, height, _, _ = read_png(shot)
    assert (width, height) == (1280, 4000)
    assert _has_colour(shot, colour)


def test_500_window_connections_stay_summarised(root: None, window_run: Results) -> None:
    """Charts and diagrams only for the first connections of a scenario (at most 100,
    fewer when they are long), one timeline of at most TIMELINE_ROWS rows per service:
    the page stays a few megabytes however many events each connection had."""
    [record] = window_run.connections
    many = []
    for i in range(500):
        c = copy.deepcopy(record)
        c.id, c.client.port = f"tcp-{i + 1}", 20000 + i
        many.append(c)
    page = render_report(window_run.out, window_run.summary, window_run.topology, many)
    print(f"500 window connections: {len(page.encode())} bytes")
    p = parse(page)
    assert p.errors == []
    assert p.count("details", "conn") == 500
    drawn = p.count("svg", "seq")
    assert p.count("svg", "window") == drawn
    assert 0 < drawn <= DIAGRAMS_PER_SCENARIO
    assert f"Diagrams are drawn for the first {drawn} connections" in page
    assert p.count("g", "grow") == TIMELINE_ROWS
    assert len(page.encode()) < 4_000_000
