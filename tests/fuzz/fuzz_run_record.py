"""Fuzz target: the readers of run.json and summary.json, from the file's bytes to the
typed records (``lab.spec.codec`` and the record classes), as `lab report` reads them."""

from __future__ import annotations

import contextlib

from lab.report.record import Summary
from lab.run.record import RunRecord
from lab.spec.codec import RecordError, parse_json_object
from tests.fuzz.harness import main


def target(data: bytes) -> None:
    doc = parse_json_object(data, "run.json")
    with contextlib.suppress(RecordError):  # the same bytes also go to the other reader
        RunRecord.from_json(doc, "run.json").to_json()
    Summary.from_json(doc, "summary.json").to_json()


if __name__ == "__main__":
    main(target, "run_record")
