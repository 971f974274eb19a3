"""render_report: a well-formed, self-contained page with a diagram per connection carrying
the capture's real numbers, escaped input, a 500-connection case, and a real render in
headless Chromium."""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.evidence.records import EndRecord, IntSides, TcpRecord, UdpRecord
from lab.report.page import render_report
from lab.report.record import ScenarioVerdict, Summary
from lab.run.record import NodeRecord, RunRecord, ServiceRecord
from lab.spec.model import Interface, Network, Node, Scenario, Service, Topology
from lab.verdict.checks import Check
from tests.report.conftest import Results
from tests.report.png import distinct_colours, read_png, screenshot

pytestmark = pytest.mark.netns

VOID = {"meta", "input", "br", "img", "link", "hr", "wbr"}
SVG_LEAVES = {"rect", "line", "path", "circle"}


class Page(HTMLParser):
    """Collects tags, attributes and text; checks that elements nest and close."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str, cls: str | None = None) -> int:
        return sum(
            1
            for t, a in self.starts
            if t == tag and (cls is None or cls in (a.get("class") or "").split())
        )


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    return p


def test_page_is_well_formed_and_self_contained(root: None, default_run: Results) -> None:
    p = parse(default_run.page)
    assert p.errors == [] and p.stack == []
    assert "http://" not in default_run.page and "https://" not in default_run.page
    for tag, attrs in p.starts:
        assert tag not in {"link", "img", "iframe", "object", "embed"}
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or value.startswith("#"), (tag, attrs)
    assert p.count("svg", "topo") == 1
    assert p.count("svg", "seq") == len(default_run.connections) == 13
    assert p.count("details", "conn") == 13
    for sc in default_run.summary.scenarios:
        assert f'id="sc-{sc.name}"' in default_run.page
        for check in sc.checks:
            assert check.detail.replace("'", "&#x27;") in default_run.page


def test_diagrams_carry_the_real_handshake_numbers(root: None, default_run: Results) -> None:
    page = default_run.page
    for c in default_run.connections:
        hs = c.handshake
        start = page.index(f"<span class=id>{c.id}</span>")
        end = page.find("</details>", page.index("packet table", start))
        block = page[start:end]
        syn = (
            f"SYN seq=0 win={hs.windows.client} "
            f"&lt;mss {hs.mss.client}, wscale {hs.wscale.client}&gt;"
        )
        synack = (
            f"SYN, ACK seq=0 ack=1 win={hs.windows.server} "
            f"&lt;mss {hs.mss.server}, wscale {hs.wscale.server}&gt;"
        )
        assert syn in block and synack in block and ">ACK 1 win=" in block
        assert f"<b>{hs.client_isn}</b>" in block and f"<b>{hs.server_isn}</b>" in block
        assert "FIN, ACK" in block


def test_hosts_show_states_and_process_trees(root: None, default_run: Results) -> None:
    page = default_run.page
    fork_pid = default_run.run["services"]["fork"]["pid"]
    assert page.count("sockets per state") >= 4
    assert f"pid {fork_pid} [" in page
    during = page[page.index("processes at 'during'") : page.index("processes at 'after'")]
    held = default_run.topology.scenarios[0].total_connections
    assert f"<b>fork</b> ({held} descendants, 0 zombies)" in during
    hosts = page[page.index('id="hosts"') :]
    assert "ESTABLISHED" in hosts and "TIME_WAIT" in hosts and "LISTEN" in hosts


EVIL = "<script>alert(1)</script>"


def _evil_folder(tmp_path: Path) -> tuple[Path, Topology, Summary]:
    topo = Topology(
        name=EVIL,
        description=EVIL,
        networks=(Network("lan" + EVIL, IPv4Network("10.0.0.0/24")),),
        nodes=(
            Node(EVIL, (Interface("lan" + EVIL, IPv4Address("10.0.0.1")),)),
            Node("c", (Interface("lan" + EVIL, IPv4Address("10.0.0.2")),)),
        ),
        services=(Service("s" + EVIL, EVIL, "fork_server", 9999),),
        scenarios=(Scenario("sc" + EVIL, "s" + EVIL, ("c",), (EVIL,), (EVIL,)),),
    )
    snaps = tmp_path / EVIL / "snapshots"
    snaps.mkdir(parents=True)
    (snaps / "during.ps.txt").write_text(f"  100     1 S  1 python3 -m x {EVIL}\n")
    service = ServiceRecord(EVIL, "fork_server", 9999, "tcp", {}, 100, EVIL + "/s.log")
    run = RunRecord(EVIL, EVIL, EVIL, EVIL, str(tmp_path), services={"s" + EVIL: service})
    (tmp_path / "run.json").write_text(json.dumps(run.to_json()))
    verdict = ScenarioVerdict("sc" + EVIL, "s" + EVIL, False, [Check(EVIL, False, EVIL)])
    summary = Summary(
        topology=EVIL,
        backend=EVIL,
        run_id=EVIL,
        started=EVIL,
        passed=False,
        error=EVIL,
        nodes={EVIL: NodeRecord({"lan" + EVIL: EVIL})},
        scenarios=[verdict],
    )
    return tmp_path, topo, summary


def test_everything_from_files_is_escaped(root: None, default_run: Results, tmp_path: Path) -> None:
    out, topo, summary = _evil_folder(tmp_path)
    conn = copy.deepcopy(default_run.connections[0])
    conn.scenario = "sc" + EVIL
    conn.client.node = EVIL
    conn.close.first_fin_by = EVIL
    conn.segments[3].payload = EVIL
    conn.segments[3].flags = [EVIL]
    summary.connections = [conn]
    summary.udp_flows = [_evil_flow()]
    page = render_report(out, summary, topo)
    assert "alert(1)</script>" not in page
    assert page.count("<script>") == 1  # the page's own filter script
    escaped = page.count("&lt;script&gt;alert(1)&lt;/script&gt;")
    # topology name and picture, description, node, network, service, scenario, check,
    # error, connection fields, payload, flags, ps args, UDP flow ...
    assert escaped >= 15
    assert "pid 100 [S]" in page  # run.json was read: the service's process tree is drawn
    p = parse(page)
    assert p.errors == [] and p.stack == []
    assert any(EVIL in t for t in p.text)  # reads back as the original text


def _evil_flow() -> UdpRecord:
    client, server = EndRecord(EVIL, "10.0.0.2", 40000), EndRecord(None, "10.0.0.1", 9999)
    sides = IntSides(1, 0)
    return UdpRecord(EVIL, "udp", client, server, None, None, sides, sides, [1], 0.0, 0.0, [], "")


def _many(res: Results, n: int) -> list[TcpRecord]:
    base = [c for c in res.connections if c.scenario in {"fork-echo", "thread-echo"}]
    out = []
    for i in range(n):
        c = copy.deepcopy(base[i % len(base)])
        c.id = f"tcp-{i + 1}"
        c.client.port = 20000 + i
        out.append(c)
    return out


def test_500_connections_stay_summarised(root: None, default_run: Results) -> None:
    conns = _many(default_run, 500)
    page = render_report(default_run.out, default_run.summary, default_run.topology, conns)
    size = len(page.encode())
    print(f"500 connections: {size} bytes")
    p = parse(page)
    assert p.errors == []
    assert p.count("details", "conn") == 500
    # Diagrams for the first 100 of each of the two scenarios; one open per scenario.
    assert p.count("svg", "seq") == 200
    assert sum(1 for t, a in p.starts if t == "details" and "open" in a) == 2
    assert "Diagrams are drawn for the first 100" in page
    assert size < 4_000_000


def test_chromium_renders_the_page(root: None, default_run: Results, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(default_run.page)
    shot = tmp_path / "out.png"
    screenshot(report, shot, 1280, 2000)
    width, height, bpp, rows = read_png(shot)
    assert (width, height) == (1280, 2000)
    assert distinct_colours(rows, bpp) > 200
    # The header is drawn in the page's pass colour band, not left white.
    band = {rows[y][x * bpp : x * bpp + 3] for y in range(0, 300, 10) for x in range(0, 1280, 40)}
    assert len(band) > 3
