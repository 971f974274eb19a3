"""A minimal PNG reader for the screenshot tests: size and decoded RGB(A) pixels of an 8-bit
truecolour PNG, standard library only (zlib + struct); and the screenshot itself, taken by
headless Chromium."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import require

_SIG = b"\x89PNG\r\n\x1a\n"


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind: int, row: bytearray, prev: bytes, bpp: int) -> None:
    """Undo one scanline's filter in place (PNG spec, section 9)."""
    n = len(row)
    if kind == 1:
        for i in range(bpp, n):
            row[i] = (row[i] + row[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(n):
            row[i] = (row[i] + prev[i]) & 0xFF
    elif kind == 3:
        for i in range(n):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            left = row[i - bpp] if i >= bpp else 0
            upleft = prev[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + _paeth(left, prev[i], upleft)) & 0xFF


def read_png(path: Path) -> tuple[int, int, int, list[bytes]]:
    """``(width, height, bytes per pixel, rows)`` of an 8-bit RGB or RGBA PNG."""
    data = path.read_bytes()
    if not data.startswith(_SIG):
        raise ValueError(f"{path}: not a PNG")
    pos, idat = len(_SIG), bytearray()
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            if depth != 8 or colour not in (2, 6):
                raise ValueError(f"{path}: only 8-bit RGB/RGBA is read here")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], row, prev, bpp)
        prev = bytes(row)
        rows.append(prev)
    return width, height, bpp, rows


def distinct_colours(rows: list[bytes], bpp: int) -> int:
    colours: set[bytes] = set()
    for row in rows:
        colours.update(row[i : i + bpp] for i in range(0, len(row), bpp * 4))
    return len(colours)


def screenshot(
    page: Path, shot: Path, width: int, height: int, env: Mapping[str, str] | None = None
) -> None:
    """Headless Chromium draws ``page`` into ``shot`` (PNG) at that window size, with
    ``env`` as its environment when given (say, another FONTCONFIG_FILE)."""
    browser = shutil.which("chromium")
    require(browser is not None, "needs chromium (apt-get install -y chromium)")
    assert browser is not None
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}"]
    proc = subprocess.run(
        [*argv, f"--window-size={width},{height}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env=None if env is None else dict(env),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
