"""Fuzz target: the topology reader, from YAML text to the typed model."""

from __future__ import annotations

from lab.spec.topology import load_topology_text
from tests.fuzz.harness import main


def target(data: bytes) -> None:
    load_topology_text(data.decode("utf-8", errors="surrogateescape"), "fuzz.yaml")


if __name__ == "__main__":
    main(target, "topology")
