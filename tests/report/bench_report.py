"""Figures for the report on an existing results folder (no timed assertions anywhere):
``python3 -m tests.report.bench_report DIR [N]`` prints how long connection_records and
render_report take and the page size, for the folder as is and with N synthetic
connections (copies of the folder's own, default 500), and how long headless Chromium
takes to load and lay out each page (when chromium is on PATH)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from lab.evidence.connections import connection_evidence
from lab.report.page import render_report
from lab.report.record import Summary
from lab.run.record import RunRecord
from lab.spec.topology import load_topology


def main() -> None:
    out = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    topology = load_topology(out / "topology.yaml")
    run = json.loads((out / "run.json").read_text())
    t0 = time.perf_counter()
    conns, flows = connection_evidence(out, topology, RunRecord.from_json(run))
    t1 = time.perf_counter()
    summary = replace(Summary.load(out), connections=conns, udp_flows=flows)
    page = render_report(out, summary, topology)
    t2 = time.perf_counter()
    print(
        f"{out}: {len(conns)} connections, records {t1 - t0:.3f} s, "
        f"render {t2 - t1:.3f} s, page {len(page.encode())} bytes, "
        f"summary.json {len(json.dumps(summary.to_json(), indent=2))} bytes{_chromium(page)}"
    )
    many = []
    for i in range(n):
        c = copy.deepcopy(conns[i % len(conns)])
        c.id, c.client.port = f"tcp-{i + 1}", 20000 + i
        many.append(c)
    t3 = time.perf_counter()
    page = render_report(out, summary, topology, many)
    t4 = time.perf_counter()
    print(
        f"{n} connections: render {t4 - t3:.3f} s, page {len(page.encode())} bytes{_chromium(page)}"
    )


def _chromium(page: str) -> str:
    """ ", Chromium <s> s": the wall time of a headless Chromium that loads the page and
    prints its DOM (start-up included; the same start-up for every page)."""
    browser = shutil.which("chromium")
    if browser is None:
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(page)
        start = time.perf_counter()
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
            capture_output=True,
            check=True,
            timeout=300,
        )
        return f", Chromium {time.perf_counter() - start:.2f} s"


if __name__ == "__main__":
    main()
