"""A Chinese report draws its characters in headless Chromium with the font the set-up
installs (fonts-wqy-microhei), not missing-glyph boxes; and it fetches no font.

Each character of a few course terms taken from the page is drawn in a cell of its own, on
top of the page and in the page's own font stack. With a CJK font, every cell differs from
the others; without one (fontconfig told to refuse every font for Chinese), Chromium draws
the same box in each: that render is made too, so the test shows it can tell them apart.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.report.summary import REPORT_FILE, finish_run
from lab.run.backends.fake import fake_backend
from lab.run.backends.tape import TOPOLOGY_FILE
from lab.run.runner import run_lab
from lab.spec.topology import load_topology
from tests.conftest import require
from tests.report.png import read_png, screenshot

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
TERMS = ("三次握手", "三次挥手", "服务器")
CELL = 80  # px: one character per cell, drawn at 60px
NO_CJK = """<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig><include>/etc/fonts/fonts.conf</include><selectfont><rejectfont><pattern>
<patelt name="lang"><string>zh</string></patelt></pattern></rejectfont></selectfont></fontconfig>
"""


def chinese_fonts(env: dict[str, str] | None = None) -> list[str]:
    out = subprocess.run(
        ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, env=env, check=False
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def probe(chars: str) -> str:
    cells = "".join(
        f'<span style="display:inline-block;width:{CELL}px;height:{CELL}px;'
        f'overflow:hidden;text-align:center">{c}</span>'
        for c in chars
    )
    return (
        '<div id=probe style="position:fixed;left:0;top:0;z-index:99;background:#fff;'
        f'color:#000;font-size:60px;line-height:{CELL}px;white-space:nowrap">{cells}</div>'
    )


def cells(shot: Path, count: int) -> list[bytes]:
    """The pixels of each probe cell."""
    _width, _height, bpp, rows = read_png(shot)
    return [
        b"".join(row[i * CELL * bpp : (i + 1) * CELL * bpp] for row in rows[:CELL])
        for i in range(count)
    ]


def inked(cell: bytes) -> bool:
    return min(cell) < 128


@pytest.fixture
def chinese_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SOCKET_LAB_STATE", str(tmp_path / "state"))
    out = tmp_path / "out"
    topology = load_topology(RECORDINGS / "handshake" / TOPOLOGY_FILE)
    run_lab(topology, fake_backend(RECORDINGS / "handshake"), out)
    finish_run(out, topology, lang="zh")
    return (out / REPORT_FILE).read_text(encoding="utf-8")


def test_chromium_draws_the_chinese_report_with_glyphs_not_boxes(
    chinese_page: str, tmp_path: Path
) -> None:
    require(shutil.which("chromium") is not None, "needs chromium (run .ci/setup)")
    require(bool(chinese_fonts()), "needs a CJK font (run .ci/setup: fonts-wqy-microhei)")
    for term in TERMS:
        assert term in chinese_page, term
    # Self-contained: no web font, nothing fetched.
    assert not re.search(r"@font-face|url\([^#]|https?://", chinese_page)
    chars = "".join(dict.fromkeys("".join(TERMS)))
    page = tmp_path / "page.html"
    page.write_text(chinese_page.replace("</body>", probe(chars) + "</body>"), encoding="utf-8")

    with_font, without_font = tmp_path / "with.png", tmp_path / "without.png"
    screenshot(page, with_font, 1000, 200)
    conf = tmp_path / "no-cjk.conf"
    conf.write_text(NO_CJK)
    env = {**os.environ, "FONTCONFIG_FILE": str(conf)}
    assert chinese_fonts(env) == []
    screenshot(page, without_font, 1000, 200, env=env)

    drawn, boxes = cells(with_font, len(chars)), cells(without_font, len(chars))
    assert all(inked(c) for c in drawn + boxes)
    assert len(set(boxes)) == 1  # no CJK font: one and the same missing-glyph box
    assert len(set(drawn)) == len(chars)  # the font: a glyph of its own for each
    assert not set(drawn) & set(boxes)
