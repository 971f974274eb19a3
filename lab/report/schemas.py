"""The JSON Schemas of run.json and summary.json, shipped with the package and made from
the record classes: ``python3 -m lab.report.schemas`` writes them again after a record
class changed (a test says when they are stale)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.report.record import summary_schema
from lab.run.record import run_schema

LAB = Path(__file__).resolve().parent.parent
SCHEMAS: dict[Path, Callable[[], dict[str, Any]]] = {
    LAB / "run" / "schemas" / "run.schema.json": run_schema,
    LAB / "report" / "schemas" / "summary.schema.json": summary_schema,
}


def schema_text(make: Callable[[], dict[str, Any]]) -> str:
    return json.dumps(make(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for path, make in SCHEMAS.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(schema_text(make))
        print(path)


if __name__ == "__main__":
    main()
