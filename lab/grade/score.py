"""The grade: one row per claim (verdict, evidence, points), from the run's checks and the
grading steps' facts; points from ``weights.json``, or a file of its shape (``--weights``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from lab.grade.flow import (
    GRADE_NPROC,
    HELD_FACT,
    NOT_ANSWERED,
    TCP_CASES,
    UDP_CASES,
    GradeFacts,
    Health,
)
from lab.grade.weights import Weights
from lab.i18n import Msg, Reread, english, join, known, msg, reread
from lab.report.record import Summary
from lab.run.record import RunRecord
from lab.run.userbuild import LOG_CAP

SCENARIO_LABELS = {"one": "1 client", "fifty": "50 clients", "five-hundred": "500 clients"}
# Evidence: a message (its English kept in grade.json), or an English text as it is.
Said = Msg | str
HELD_SHOWN = 5  # connections named when a server that stopped answering held some
PIDS_SHOWN = 10  # processes named when a server left children running after SIGTERM
FD_SLACK = 2  # descriptors a server may hold beyond its baseline (a log reopened, say)
RSS_SLACK_KIB = 64 << 10  # memory growth allowed over the whole battery
LISTENS = "builds and listens"
SIGTERM = "SIGTERM: exits, no child left"
RAN = "service ran until stopped"
SIGTERM_CHECK = "service stopped on SIGTERM"  # lab.report.summary's, instead of RAN
# The run's steps up to the service listening: failing in one, the submission never listened.
BEFORE_LISTENING = ("up", "build", "capture start", "services", "snapshot: before")
IDLE = "no process without a client"
LOG = f"log within {LOG_CAP >> 20} MiB"
# The checks of ``lab.verdict`` each model's claims are, by the names they carry there.
MODEL_CLAIMS = {
    "fork": ["one child per connection", "children reaped"],
    "thread": ["one process, a thread per connection"],
    "iterative": ["one client at a time"],
    "udp": ["datagram boundaries"],
    "dict": ["UTF-8 on the wire"],
}
CLOSE_CLAIMS = ["server passes CLOSE_WAIT", "TIME_WAIT on the client"]
# What close-wait-on-server says of a server that did not close while its client was there.
NEVER_CLOSED = ("the server never sent its FIN", "still in CLOSE_WAIT on the server")


@dataclass(frozen=True)
class Row:
    """One claim's verdict. ``judged`` False: the claim could not be judged because of an
    earlier failure (the server crashed, never listened, stopped answering); such a row
    earns no points but is not counted as a failure of its own."""

    claim: str
    passed: bool
    evidence: str
    points: float
    max_points: float
    judged: bool = True
    # The evidence as the check said it, for the grade's readers in their language;
    # grade.json and JUnit keep the English ``evidence``.
    said: Msg | str | None = field(default=None, compare=False, repr=False)

    def text(self) -> str:
        """The evidence in the current language; one read back from grade.json is read by
        its words (a fixed sentence, a grading message, a run's error), else as it is."""
        said = known(self.evidence) if self.said is None else self.said
        if isinstance(said, Msg):
            return said.text()
        return reread(said, ("grade.ev.", "error."))

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else ("FAIL" if self.judged else "not judged")

    @property
    def failed(self) -> bool:
        return not self.passed and self.judged


@dataclass(frozen=True)
class Grade:
    submission: str
    model: str
    backend: str
    rows: tuple[Row, ...]
    seconds: float
    results: str  # the results folder, "" when nothing ran
    verdict: str  # one line: "all claims pass", or what went wrong first

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def points(self) -> float:
        return sum(r.points for r in self.rows)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.rows)

    def to_json(self) -> dict[str, object]:
        doc = asdict(replace(self, rows=tuple(replace(r, said=None) for r in self.rows)))
        for row in doc["rows"]:
            del row["said"]
        doc.update(passed=self.passed, points=self.points, max_points=self.max_points)
        return doc


def _row(weights: Weights, claim: str, passed: bool, evidence: Said, judged: bool = True) -> Row:
    most = weights.of(claim)
    said, text = (evidence, english(evidence)) if isinstance(evidence, Msg) else (None, evidence)
    return Row(claim, passed, text, most if passed else 0.0, most, judged, said)


def expected_claims(model: str, tcp: bool) -> list[str]:
    """Every claim the battery judges, so that a run that stopped early still lists them."""
    out = [LISTENS, *(f"replies: {label}" for label in SCENARIO_LABELS.values())]
    out += MODEL_CLAIMS[model]
    if tcp:
        out += CLOSE_CLAIMS
    out += [RAN, IDLE, LOG]
    out += [f"hostile: {c}" for c in (TCP_CASES if tcp else UDP_CASES)]
    return [*out, SIGTERM]


def score(
    model: str,
    weights: Weights,
    summary: Summary | None,
    record: RunRecord | None,
    facts: GradeFacts,
    error: str | None,
) -> list[Row]:
    """Rows for every expected claim: judged where the evidence is, failed where the run
    never got that far (the evidence says why)."""
    judged: dict[str, tuple[bool, Said]] = {}
    failed_in: dict[str, int] = {}  # claim -> the scenario (by order) where it failed first
    if error is None or (record is not None and record.failed_step not in BEFORE_LISTENING):
        judged[LISTENS] = (True, "built, started, listened")
    if summary is not None:
        for index, sc in enumerate(summary.scenarios):
            for check in sc.checks:
                if check.name == SIGTERM_CHECK:
                    # The run's own word for a server killed after the grace period: it
                    # did run until stopped; the SIGTERM claim says the rest.
                    judged.setdefault(RAN, (True, "ran until the lab stopped it"))
                    continue
                if sc.name == "five-hundred" and check.name != "replies":
                    # 500 clients on one host reuse source ports: a UDP flow there can
                    # hold two clients' datagrams. The design is judged on the others.
                    continue
                name = (
                    f"replies: {SCENARIO_LABELS.get(sc.name, sc.name)}"
                    if check.name == "replies"
                    else check.name
                )
                ok, detail = judged.get(name, (True, ""))
                if ok and (not check.passed or not detail):
                    judged[name] = (check.passed, _checks(check.evidence(), check.detail))
                if not check.passed:
                    failed_in.setdefault(name, index)
    judged.update(_hostile(facts))
    if facts.baseline is not None and facts.baseline.alive:
        judged[IDLE] = _idle(facts.baseline)
    if record is not None and record.services:
        info = next(iter(record.services.values()))
        cut = msg("grade.ev.log_cut", cap=LOG_CAP)
        judged[LOG] = (False, cut) if info.log_truncated else (True, "under the cap")
    if record is not None and record.services:
        judged[SIGTERM] = _sigterm(record, facts)
    failure = _error(error)
    if failure is not None and LISTENS not in judged:
        judged[LISTENS] = (False, failure)
    why: Said | None = msg("grade.ev.not_reached", error=failure) if failure else None
    if facts.baseline is not None and not facts.baseline.alive:
        why = msg("grade.ev.not_run_exited")
    if facts.cases and NOT_ANSWERED in " ".join(facts.cases[-1].problems):
        why = msg("grade.ev.not_run_unanswered", case=facts.cases[-1].case)
    explained = _wrong_words(model, judged, failed_in, record) | _after_close_wait(judged)
    if not judged.get(LISTENS, (True, ""))[0]:
        # Never listened: what failed besides (SIGTERM, the run's own checks) follows.
        for name in [n for n, (ok, _) in judged.items() if n != LISTENS and not ok]:
            del judged[name]
            explained[name] = "not judged: it never listened"
    crash = _after_crash(judged, failed_in, record, facts)
    if crash is not None:
        why = crash
    rows = []
    for claim in expected_claims(model, model != "udp"):
        if claim in judged:
            rows.append(_row(weights, claim, *judged.pop(claim)))
        elif claim in explained:
            rows.append(_row(weights, claim, False, explained[claim], judged=False))
        elif why is not None:  # downstream of a failure already counted
            rows.append(_row(weights, claim, False, why, judged=False))
        else:
            rows.append(_row(weights, claim, False, "no evidence"))
    # A check the battery did not plan for (a capture problem, say) still counts.
    rows += [_row(weights, c, ok, ev) for c, (ok, ev) in sorted(judged.items())]
    planned = set(expected_claims(model, model != "udp"))
    rows += [
        _row(weights, c, False, ev, judged=False)
        for c, ev in sorted(explained.items())
        if c not in planned
    ]
    if failure is not None and rows[0].passed:  # the run failed after it listened
        rows.append(_row(weights, "the run ended cleanly", False, failure))
    return rows


def _checks(said: Msg | str, detail: str) -> Said:
    """A check's evidence: its message (whose English is the check's detail), else the
    detail itself."""
    return said if isinstance(said, Msg) and english(said) == detail else detail


def _error(error: str | None) -> Said | None:
    """The run's error (English, as run.json keeps it), read in the grade's language."""
    if error is None:
        return None
    return msg("plain.error", error=Reread(error)) if error else error


def _after_crash(
    judged: dict[str, tuple[bool, Said]],
    failed_in: dict[str, int],
    record: RunRecord | None,
    facts: GradeFacts,
) -> Said | None:
    """A server that crashed fails one claim, RAN, whose evidence says where it ended;
    what failed because of the crash (the replies of the clients it left, the hostile
    cases after it, SIGTERM) is removed from ``judged``: not judged. Returns the reason
    those rows give, None if the server did not crash. A claim that failed before the
    crash (wrong replies in a scenario whose connections all ran) stays failed."""
    info = next(iter(record.services.values())) if record and record.services else None
    if info is None or not info.ended_before_stop or RAN not in judged or judged[RAN][0]:
        return None
    assert record is not None
    first, where = _crash_scenario(record)
    if first is not None:
        for name, index in failed_in.items():
            if index >= first and name != RAN and not judged[name][0]:
                del judged[name]
    else:
        dead = [c.case for c in facts.cases if not c.health.alive]
        if dead:
            where = msg("grade.where.hostile", case=dead[0])
        elif facts.baseline is not None and not facts.baseline.alive:
            where = msg("grade.where.before_hostile")
    gone = {f"hostile: {c.case}" for c in facts.cases if not c.health.alive}
    for name in gone | {SIGTERM, IDLE}:
        if name in judged and not judged[name][0]:
            del judged[name]
    status: Said = ""
    if info.exit_status is not None:
        status = msg("grade.ev.status", status=info.exit_status)
    ok, evidence = judged[RAN]
    judged[RAN] = (ok, msg("grade.ev.ended_during", evidence=evidence, status=status, where=where))
    return msg("grade.ev.crashed_during", status=status, where=where)


def _wrong_words(
    model: str,
    judged: dict[str, tuple[bool, Said]],
    failed_in: dict[str, int],
    record: RunRecord | None,
) -> dict[str, Said]:
    """A dictionary server whose translations are wrong on the wire (the claim UTF-8 on
    the wire failed) fails the replies too, for the same reason; when every connection of
    a scenario was answered (none refused or cut), its replies row is not judged again:
    removed from ``judged`` and returned with its reason."""
    utf8 = MODEL_CLAIMS["dict"][0]
    if model != "dict" or record is None or judged.get(utf8, (True, ""))[0]:
        return {}
    cut, _ = _crash_scenario(record)
    out: dict[str, Said] = {}
    for name, index in failed_in.items():
        if name.startswith("replies: ") and (cut is None or index < cut):
            del judged[name]
            out[name] = msg("grade.ev.words_wrong", claim=msg(f"check.{utf8}"))
    return out


def _after_close_wait(judged: dict[str, tuple[bool, Said]]) -> dict[str, Said]:
    """A server that never closed its side while the client was there fails CLOSE_WAIT
    (no FIN in the capture, or one only when it was stopped); the client's TIME_WAIT that
    this cost it is not judged again: removed from ``judged`` and returned with why."""
    close_wait, time_wait = CLOSE_CLAIMS
    cw_ok, cw_said = judged.get(close_wait, (True, ""))
    said = english(cw_said) if isinstance(cw_said, Msg) else cw_said
    never = any(words in said for words in NEVER_CLOSED)
    if cw_ok or not never or judged.get(time_wait, (True, ""))[0]:
        return {}
    del judged[time_wait]
    return {time_wait: msg("grade.ev.after_close_wait", claim=msg(f"check.{close_wait}"))}


def _crash_scenario(record: RunRecord) -> tuple[int | None, Said]:
    """The first scenario (by order) one of whose connections was refused, reset or closed
    before its replies: where the server was gone; (None, "after the clients") if none."""
    for index, (name, scenario) in enumerate(record.scenarios.items()):
        for client in scenario.clients.values():
            result = client.result
            conns = getattr(result, "connections", []) if result is not None else []
            if client.error or any(c.error or getattr(c, "closed_early", False) for c in conns):
                label = SCENARIO_LABELS.get(name)
                return index, msg(f"grade.where.{name}") if label else name
    return None, msg("grade.where.after_clients")


def _hostile(facts: GradeFacts) -> dict[str, tuple[bool, Said]]:
    base = facts.baseline or Health(alive=True)
    out: dict[str, tuple[bool, Said]] = {}
    for case in facts.cases:
        h = case.health
        # The hostile client's findings, in its English (grade-run.json keeps them so).
        problems: list[Said | Reread] = [Reread(p, "hostile.") for p in case.problems]
        held = case.facts.get(HELD_FACT)
        if isinstance(held, list) and held:
            shown = ", ".join(str(c) for c in held[:HELD_SHOWN])
            problems.append(msg("grade.ev.held", count=len(held), connections=shown))
        if not h.alive:
            problems.append(msg("grade.ev.gone"))
        else:
            if h.zombies > base.zombies:
                limit = _at_limit(h.zombies + h.children, "grade.ev.nproc_reached")
                problems.append(
                    msg("grade.ev.zombies", now=h.zombies, were=base.zombies, limit=limit)
                )
            if h.more_fds(base, FD_SLACK):
                problems.append(msg("grade.ev.fds", now=h.fds, were=base.fds))
            if h.rss_kib > base.rss_kib + RSS_SLACK_KIB:
                problems.append(msg("grade.ev.rss", now=h.rss_kib, were=base.rss_kib))
        fds = "?" if h.fds is None else h.fds  # unknown: the folder could not be read
        fine = msg("grade.ev.hostile_fine", zombies=h.zombies, fds=fds, rss=h.rss_kib)
        said: Said = msg("plain.joined", problems=join(problems)) if problems else fine
        out[f"hostile: {case.case}"] = (not problems, said)
    return out


def _idle(base: Health) -> tuple[bool, Said]:
    """Once every client has gone, a server has no live child (a thread server none at
    all). A fork bomb is stopped by the process limit and said to be."""
    if base.children == 0:
        return True, msg("grade.ev.idle_ok")
    limit = _at_limit(base.children, "grade.ev.nproc_limit")
    return False, msg("grade.ev.idle_children", children=base.children, limit=limit)


def _at_limit(processes: int, key: str) -> Said:
    """``key``'s words when the server's processes are at the process limit (within 50:
    the run's other processes of its uid count too), else nothing."""
    return msg(key, limit=GRADE_NPROC) if processes >= GRADE_NPROC - 50 else ""


def _sigterm(record: RunRecord, facts: GradeFacts) -> tuple[bool, Said]:
    info = next(iter(record.services.values()))
    if info.ended_before_stop:
        return False, msg("grade.ev.exited_before_sigterm", status=info.exit_status)
    if info.ended_before_stop is None:
        return False, msg("grade.ev.not_stopped")
    if info.killed_after_grace:
        return False, msg("grade.ev.ignored_sigterm")
    if left := facts.left_after_stop:
        more = msg("detail.and_more", n=len(left) - PIDS_SHOWN) if len(left) > PIDS_SHOWN else ""
        return False, msg("grade.ev.children_left", n=len(left), pids=left[:PIDS_SHOWN], more=more)
    kids = len(facts.children_at_stop)
    return True, msg("grade.ev.sigterm_ok", status=info.exit_status, children=kids)


def first_line(evidence: str) -> str:
    """The line that says most: a compiler's first error rather than "build failed"."""
    lines = evidence.splitlines() or [""]
    return next((ln.strip() for ln in lines if "error:" in ln), lines[0])
