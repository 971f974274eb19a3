"""Fuzz target: the snapshot parsers (``ss``, ``netstat`` and ``ps`` output), on text
decoded as the evidence decodes it (undecodable bytes replaced), and the questions the
checks ask of their rows."""

from __future__ import annotations

from lab.evidence.analysis.files import decode_text
from lab.evidence.analysis.snapshots import (
    descendants,
    parse_netstat,
    parse_ps,
    parse_sockets,
    parse_ss,
    states_over_time,
    zombies,
)
from tests.fuzz.harness import main


def target(data: bytes) -> None:
    text, damage = decode_text(data)
    # Where the damage is said, the byte there is in the file.
    assert damage is None or 0 <= (damage.offset or 0) < len(data), damage
    rows = parse_sockets(text)
    states_over_time({"during": rows, "udp": parse_ss(text, "udp"), "nt": parse_netstat(text)})
    for row in rows:
        row.to_dict()
    procs = parse_ps(text)
    for proc in procs[:5]:
        descendants(procs, proc.pid)
    zombies(procs)


if __name__ == "__main__":
    main(target, "snapshot")
