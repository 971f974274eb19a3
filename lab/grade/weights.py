"""The points of each claim: ``weights.json`` beside this module, or a file of the same
shape given with ``--weights``, whose values go over the defaults claim by claim."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.errors import UsageError
from lab.i18n import msg

WEIGHTS_FILE = Path(__file__).with_name("weights.json")


@dataclass(frozen=True)
class Weights:
    default: float
    claims: dict[str, float]

    def of(self, claim: str) -> float:
        if claim in self.claims:
            return self.claims[claim]
        family = claim.split(":", 1)[0]  # "hostile: churn" may be weighed as "hostile"
        return self.claims.get(family, self.default)


def read_weights(path: Path | None = None) -> Weights:
    """The default weights, with a given file's values over them. A bad file is exit 2."""
    base = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    weights = Weights(float(base["default"]), {k: float(v) for k, v in base["claims"].items()})
    if path is None:
        return weights
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError.said(msg("grade.weights.unreadable", path=path, why=exc)) from None
    except json.JSONDecodeError as exc:
        where = f"{path}:{exc.lineno}:{exc.colno}"
        raise UsageError.said(msg("grade.weights.not_json", where=where, why=exc.msg)) from None
    if not isinstance(doc, dict):
        raise UsageError.said(msg("grade.weights.not_object", path=path))
    claims = doc.get("claims", {})
    default = doc.get("default", weights.default)
    bad = [k for k, v in claims.items() if not _number(v)] if isinstance(claims, dict) else []
    if not isinstance(claims, dict) or bad or not _number(default):
        where = (
            f"claims.{bad[0]}" if bad else ("claims" if not isinstance(claims, dict) else "default")
        )
        raise UsageError.said(msg("grade.weights.not_points", path=path, where=where))
    return Weights(float(default), {**weights.claims, **{k: float(v) for k, v in claims.items()}})


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
