"""The Debian mirror and suite the host itself installs from, read from its apt sources
(one-line ``.list`` files and deb822 ``.sources``), for the offline image build."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from lab.deploy.image_inputs import ImageBuildError


@dataclass(frozen=True)
class AptSource:
    mirror: str
    suite: str


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Stanzas of a deb822 ``.sources`` file (comment lines dropped, keys lower-cased)."""
    stanza: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, ""
        elif line[0] in " \t" and key:
            stanza[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            stanza[key] = value.strip()


def _entries(apt_dir: Path) -> Iterator[tuple[str, str]]:
    """(uri, suite) of every enabled binary ``deb`` source, in apt's reading order."""
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in {".list", ".sources"})
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for st in _deb822_stanzas(text):
                if "deb" not in st.get("types", "").split():
                    continue
                if st.get("enabled", "yes").lower() == "no":
                    continue
                for uri in st.get("uris", "").split():
                    for suite in st.get("suites", "").split():
                        yield uri, suite
        else:
            for raw in text.splitlines():
                words = raw.split("#", 1)[0].split()
                if not words or words[0] != "deb":
                    continue
                words = words[1:]
                if words and words[0].startswith("["):  # [arch=amd64 signed-by=...]
                    while words and not words[0].endswith("]"):
                        words = words[1:]
                    words = words[1:]
                if len(words) >= 2:
                    yield words[0], words[1]


def _codename(os_release: Path) -> str | None:
    with suppress(OSError):
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or None
    return None


def host_apt_source(
    apt_dir: Path = Path("/etc/apt"), os_release: Path = Path("/etc/os-release")
) -> AptSource:
    """The mirror and suite the host itself installs from: the source whose suite is the
    host's release codename (not -updates/-security), else the first plain suite."""
    entries = [(u.rstrip("/"), s) for u, s in _entries(apt_dir) if u.startswith(("http", "file"))]
    codename = _codename(os_release)
    for uri, suite in entries:
        if suite == codename:
            return AptSource(uri, suite)
    for uri, suite in entries:
        if "-" not in suite and "/" not in suite:
            return AptSource(uri, suite)
    raise ImageBuildError(
        f"no Debian mirror found in {apt_dir}/sources.list or {apt_dir}/sources.list.d "
        "for the offline image build"
    )
