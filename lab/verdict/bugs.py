"""Checks expected to fail: a scenario whose service has a known bug (``bug:``, the
spot-the-bug experiments) names the checks that catch it. Such a check passes when it
fails, as ``NAME (bug)``, its detail stating the bug and the evidence; and fails when it
holds, since the bug did not show. A race (``race: [NAME]``) passes either way and says
which way it went this run.

The inversion is applied to a check as judged on its evidence, before the damaged-evidence
rule of ``lab.verdict.checks``, so that a damaged capture never passes as "the bug shown".
"""

from __future__ import annotations

from lab.i18n import msg
from lab.spec.model import Bug
from lab.verdict.check import Check
from lab.verdict.scope import saw_nothing


def as_bug(check: Check, bug: Bug, race: bool = False) -> Check:
    """``check``, judged as one that the bug should make fail. A check that failed for
    want of any of the scenario's traffic shows nothing, the bug no more than the rest."""
    detail = check.evidence()
    if saw_nothing(check):
        return Check.said(f"{check.name} (bug)", False, msg("bug.nothing", detail=detail))
    if race:
        name = f"{check.name} (bug, a race)"
        key = "bug.race_won" if check.passed else "bug.race_lost"
        return Check.said(name, True, msg(key, what=bug.what, detail=detail))
    name = f"{check.name} (bug)"
    key = "bug.held" if check.passed else "bug.fails"
    return Check.said(name, not check.passed, msg(key, what=bug.what, detail=detail))


def judged(check: Check, bug: Bug | None, key: str) -> Check:
    """``check`` (made by the check or claim ``key``) as the scenario's bug wants it judged."""
    if bug is None or key not in bug.caught_by:
        return check
    return as_bug(check, bug, race=key in bug.race)
