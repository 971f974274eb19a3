"""Read access to one results folder: run.json, the snapshots and the captures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab.evidence.analysis.pcap import Packet, read_packets
from lab.evidence.analysis.snapshots import ProcessRow, parse_ps
from lab.run.record import RunRecord, load_run


@dataclass(frozen=True)
class Evidence:
    """Read access to one results folder: ``record`` is its run.json, checked and typed."""

    root: Path
    record: RunRecord
    _cache: dict[Path, list[Packet]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, root: Path) -> Evidence:
        """Read a results folder; a run.json of another version or shape is refused
        (:class:`lab.spec.codec.RecordError`) before any check reads it."""
        return cls(root, load_run(root))

    def snapshot(self, node: str, phase: str, kind: str) -> str | None:
        path = self.root / node / "snapshots" / f"{phase}.{kind}.txt"
        return path.read_text() if path.is_file() else None

    def processes(self, node: str, phase: str) -> list[ProcessRow] | None:
        text = self.snapshot(node, phase, "ps")
        return None if text is None else parse_ps(text)

    def packets(self, path: Path) -> list[Packet]:
        """Decoded packets of a capture, read once per folder however many checks ask."""
        cache: dict[Path, list[Packet]] = self._cache
        if path not in cache:
            cache[path] = read_packets(path)
        return cache[path]

    def captures(self, node: str) -> list[Path]:
        return [self.root / c.node / c.file for c in self.record.captures if c.node == node]
