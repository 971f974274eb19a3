"""Read access to one results folder: run.json, the snapshots and the captures.

Every evidence file is read bounded (``lab.evidence.analysis.files``). What cannot be read,
where a capture is damaged, is kept as :class:`EvidenceProblem` rows: the checks that read
such a file are not passed on it (``lab.verdict.checks``), and summary.json lists them. A
capture tcpdump said it dropped packets from is such a row too, said but failing nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from lab.evidence.analysis.files import (
    MAX_CAPTURE_BYTES,
    MAX_TEXT_BYTES,
    Damage,
    EvidenceFileError,
    decode_text,
    read_bytes,
    refusal,
)
from lab.evidence.analysis.pcap import Packet, read_capture
from lab.evidence.analysis.snapshots import ProcessRow, parse_ps
from lab.i18n import Msg, Reread, join, msg
from lab.run.record import RunRecord, load_run


@dataclass(frozen=True)
class EvidenceProblem:
    """A damaged or unreadable evidence file: ``file`` relative to the results folder, the
    byte ``offset`` and ``record`` (frame number) where the damage is, when known.
    ``fails_checks`` is False when nothing was lost (a snapshot's bytes that are not UTF-8,
    read as U+FFFD): it is said wherever damage is, but no check or run fails for it."""

    file: str
    problem: str
    offset: int | None = None
    record: int | None = None
    fails_checks: bool = True

    def __str__(self) -> str:
        return f"{self.file}: {Damage(self.problem, self.offset, self.record)}"


# tcpdump's last words on its capture: "57 packets dropped by kernel".
KERNEL_DROPS = re.compile(r"^(\d+) packets? dropped by kernel$", re.MULTILINE)


def _dropped_text(n: int) -> str:
    return (
        f"tcpdump dropped {n} packet{'s' if n != 1 else ''}: its kernel ring was full "
        "(a busy machine; capture.buffer makes it larger), and the checks saw only the rest"
    )


def _relative(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:  # a capture named by an absolute path in a hand-edited run.json
        return str(path)


@dataclass(frozen=True)
class _Watch:
    files: set[Path] = field(default_factory=set)


@dataclass(frozen=True)
class Evidence:
    """Read access to one results folder: ``record`` is its run.json, checked and typed."""

    root: Path
    record: RunRecord
    _cache: dict[Path, list[Packet]] = field(default_factory=dict, compare=False, repr=False)
    _frames: dict[Path, int] = field(default_factory=dict, compare=False, repr=False)
    _problems: dict[Path, list[EvidenceProblem]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _watches: list[_Watch] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def load(cls, root: Path) -> Evidence:
        """Read a results folder; a run.json of another version or shape is refused
        (:class:`lab.spec.codec.RecordError`) before any check reads it."""
        return cls(root, load_run(root))

    def _rel(self, path: Path) -> str:
        return _relative(self.root, path)

    def _used(self, path: Path) -> None:
        for watch in self._watches:
            watch.files.add(path)

    def _refused(self, path: Path, exc: EvidenceFileError) -> None:
        self._problems[path] = [EvidenceProblem(self._rel(path), exc.problem)]

    def snapshot(self, node: str, phase: str, kind: str) -> str | None:
        """A snapshot's text; None when the run left none, or (then also a problem) when
        the file cannot be read."""
        return self.text(self.root / node / "snapshots" / f"{phase}.{kind}.txt")

    def text(self, path: Path) -> str | None:
        """A snapshot's or log's text, undecodable bytes replaced (and said as a problem that
        fails nothing); None when the run left no such file, or (then also a problem) when
        the file cannot be read."""
        if not path.exists() and not path.is_symlink():
            return None
        self._used(path)
        try:
            data = read_bytes(path, MAX_TEXT_BYTES)
        except EvidenceFileError as exc:
            self._refused(path, exc)
            return None
        text, damage = decode_text(data)
        if damage is not None:
            found = EvidenceProblem(self._rel(path), damage.problem, damage.offset)
            self._problems[path] = [replace(found, fails_checks=False)]
        return text

    def processes(self, node: str, phase: str) -> list[ProcessRow] | None:
        text = self.snapshot(node, phase, "ps")
        return None if text is None else parse_ps(text)

    def packets(self, path: Path) -> list[Packet]:
        """Decoded packets of a capture, read once per folder however many checks ask: up
        to any damage, none for a file that cannot be read (see :meth:`problems`)."""
        self._used(path)
        cache: dict[Path, list[Packet]] = self._cache
        if path not in cache:
            try:
                read = read_capture(path)
            except EvidenceFileError as exc:
                cache[path], self._frames[path] = [], 0
                self._refused(path, exc)
                return cache[path]
            cache[path], self._frames[path] = read.packets, read.frames
            rel = self._rel(path)
            self._problems[path] = [
                EvidenceProblem(rel, d.problem, d.offset, d.record) for d in read.damage
            ]
            dropped = self._dropped(path)
            if dropped:
                # Said wherever the capture is read, but no check fails for it: every record
                # kept is whole, and a busy machine's heavy run (a class graded, hundreds of
                # connections) drops some in most runs; failing them all would judge nothing.
                said = EvidenceProblem(rel, _dropped_text(dropped), fails_checks=False)
                self._problems[path].append(said)
        return cache[path]

    def _dropped(self, path: Path) -> int:
        """The packets tcpdump said its kernel ring dropped while it wrote ``path``: the
        capture lacks them, though every record in it is whole."""
        for c in self.record.captures:
            if self.root / c.node / c.file == path:
                said = self.text(self.root / c.node / c.log) or ""
                return sum(int(n) for n in KERNEL_DROPS.findall(said))
        return 0

    def frames(self, path: Path) -> int:
        """How many records the capture holds (IP or not)."""
        self.packets(path)
        return self._frames[path]

    def captures(self, node: str) -> list[Path]:
        return [self.root / c.node / c.file for c in self.record.captures if c.node == node]

    @contextmanager
    def watching(self) -> Iterator[set[Path]]:
        """The evidence files read inside the ``with`` block."""
        watch = _Watch()
        self._watches.append(watch)
        try:
            yield watch.files
        finally:
            self._watches.remove(watch)

    def problems(self, paths: set[Path] | None = None) -> list[EvidenceProblem]:
        """The problems found so far, in the files ``paths`` or in all files read."""
        return [
            p
            for path, found in self._problems.items()
            if paths is None or path in paths
            for p in found
        ]

    def all_problems(self) -> list[EvidenceProblem]:
        """Every capture and snapshot of the run read (a capture once), then every problem
        found in any file."""
        for capture in self.record.captures:
            self.packets(self.root / capture.node / capture.file)
        for node in sorted(self.record.nodes):
            folder = self.root / node / "snapshots"
            if not folder.is_symlink() and folder.is_dir():
                for path in sorted(folder.glob("*.txt")):
                    self.text(path)
        return self.problems()

    def failing_problems(self, paths: set[Path] | None = None) -> list[EvidenceProblem]:
        """The problems that fail the checks reading their files (see ``fails_checks``)."""
        return [p for p in self.problems(paths) if p.fails_checks]


def unreadable_files(root: Path, record: RunRecord) -> list[EvidenceProblem]:
    """The evidence files of a results folder that no reader will open, ``file`` relative to
    ``root`` ("server/eth0.pcap": "a symbolic link (to /dev/zero); ..."): links, FIFOs,
    devices and files beyond the size bound. Nothing is opened; a missing file is not
    listed here."""
    nodes = sorted({c.node for c in record.captures} | set(record.nodes))
    limits: list[tuple[Path, int]] = [
        (root / c.node / c.file, MAX_CAPTURE_BYTES) for c in record.captures
    ]
    for node in nodes:
        folder = root / node
        if folder.is_symlink() or not folder.is_dir():
            continue
        for pattern in ("*.log", "snapshots/*"):
            limits += [(p, MAX_TEXT_BYTES) for p in sorted(folder.glob(pattern))]
    found = []
    for path, limit in dict(limits).items():
        why = refusal(path, limit)
        if why is not None:
            found.append(EvidenceProblem(_relative(root, path), why))
    return found


def refused_line(root: Path, refused: list[EvidenceProblem]) -> Msg:
    """One line for a folder that is not judged because of ``refused`` (not empty): the
    first file in full with its problem, the others by name, and that nothing was done."""
    first, *others = refused
    problem = Reread(first.problem, "evidence.")
    if not others:
        return msg("evline.refused", path=root / first.file, problem=problem, root=root)
    named = join(
        (msg("evline.refused_other", file=p.file, problem=Reread(p.problem, "evidence."))
         for p in others),
        "sep.semicolon",
    )  # fmt: skip
    key = "evline.refused_more_one" if len(others) == 1 else "evline.refused_more"
    return msg(key, path=root / first.file, problem=problem, count=len(others), named=named,
               root=root)  # fmt: skip
