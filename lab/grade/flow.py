"""One graded run: ``lab run``'s flow with two steps of grading added. After the scenarios
and their "after" snapshot, the hostile clients, each followed by a look at the server's
process (zombies, descriptors, memory); at the stop, what SIGTERM left behind. Their facts
go to ``grade-run.json``."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.errors import BackendError, LabError
from lab.grade.submission import HOSTILE_NODE
from lab.run import runner
from lab.run.backends.base import Backend, Proc
from lab.run.record import RunRecord
from lab.run.session import Progress, Session
from lab.run.userbuild import Built
from lab.spec.model import Service, Topology

GRADE_RUN_FILE = "grade-run.json"
GRADE_NPROC = 1500  # processes of the run's uid while graded (lab run: 1,024)
GRADE_ADDRESS_SPACE = 16 << 30  # bytes (lab run: 4 GiB)
CASE_TIMEOUT = 120.0  # seconds one hostile case may take on its node
TCP_CASES = (
    "line_1mib", "no_newline", "nul_bytes", "invalid_utf8", "binary_junk", "reset_mid_line",
    "half_close", "split_line", "many_lines", "idle_1000", "churn", "eof_at_once", "vanish",
    "never_reads",
)  # fmt: skip
UDP_CASES = ("udp_junk", "udp_burst", "udp_vanish")
# The battery is lab.programs.hostile's; it draws on the lab's corpus (hostile_corpus).
NOT_ANSWERED = "a normal client was not answered"  # as lab.programs.hostile says it
HELD_FACT = "server_held"  # a case's fact: the connections the server then held


@dataclass
class Health:
    """The server's process as its host sees it."""

    alive: bool
    zombies: int = 0
    children: int = 0  # live ones
    fds: int | None = None  # None: /proc/PID/fd could not be read, so no count is known
    rss_kib: int = 0

    def more_fds(self, than: Health, slack: int = 0) -> bool:
        """More descriptors open than ``than`` had, beyond ``slack``; never when either
        count is unknown (an unread folder is not an empty one)."""
        return self.fds is not None and than.fds is not None and self.fds > than.fds + slack


@dataclass
class CaseResult:
    case: str
    problems: list[str]
    facts: dict[str, object]
    health: Health


@dataclass
class GradeFacts:
    """What the grading steps saw; judged by ``lab.grade.score``."""

    baseline: Health | None = None
    cases: list[CaseResult] = field(default_factory=list)
    children_at_stop: list[int] = field(default_factory=list)
    left_after_stop: list[int] = field(default_factory=list)

    def save(self, out_dir: Path) -> None:
        text = json.dumps(asdict(self), indent=2, ensure_ascii=False)
        (out_dir / GRADE_RUN_FILE).write_text(text, encoding="utf-8")


def load_facts(out_dir: Path) -> GradeFacts:
    path = out_dir / GRADE_RUN_FILE
    if not path.is_file():
        return GradeFacts()
    doc = json.loads(path.read_text(encoding="utf-8"))
    base = doc.get("baseline")
    return GradeFacts(
        baseline=Health(**base) if base else None,
        cases=[
            CaseResult(c["case"], c["problems"], c["facts"], Health(**c["health"]))
            for c in doc.get("cases", [])
        ],
        children_at_stop=list(doc.get("children_at_stop", [])),
        left_after_stop=list(doc.get("left_after_stop", [])),
    )


class GradeFlow(runner.Flow):
    """The run's own steps, unchanged, and the grading ones around them."""

    def __init__(
        self,
        session: Session,
        record: RunRecord,
        say: Progress,
        built: dict[str, Built],
        *,
        kind: str,
        facts: GradeFacts,
    ) -> None:
        super().__init__(session, record, say, built)
        self.kind = kind  # the hostile clients' idea of a right reply: echo, dict or udp
        self.facts = facts

    def service_argv(self, service: Service) -> list[str]:
        """The run's command with the grading limits: room for 1,000 idle connections with
        a process or a thread each (a thread's stack counts in the address space), still a
        limit that stops a fork bomb, counted for this run alone (its uid is its own)."""
        argv = super().service_argv(service)
        for flag, value in (("--nproc", GRADE_NPROC), ("--as", GRADE_ADDRESS_SPACE)):
            if flag in argv:
                argv[argv.index(flag) + 1] = str(value)
        return argv

    def start_service(self, service: Service) -> None:
        """The run's start; a server that does not listen on its port is asked where it
        listens instead (a port typed wrong, a UDP socket for a TCP server ...)."""
        try:
            super().start_service(service)
        except BackendError as exc:
            proc = self.servers.get(service.name)
            if proc is None or not proc.running():
                raise
            ss = self.s.run(service.node, ["ss", "-Hlntup"], timeout=10.0).stdout
            mine = [ln.split() for ln in ss.splitlines() if f"pid={proc.pid}," in ln]
            where = sorted({f"{w[0]} port {w[4].rsplit(':', 1)[-1]}" for w in mine if len(w) > 4})
            if not where:
                raise
            raise BackendError(f"{exc}; it listens on {', '.join(where)} instead") from None

    def after_the_clients(self) -> None:
        """The hostile clients, after the "after" snapshot: the claims of the scenarios'
        clients (TIME_WAIT, children reaped) are judged on what those clients left, not
        on a snapshot that a slow corpus pushed past TIME_WAIT's 60 s."""
        self.hostile()

    def hostile(self) -> None:
        service = self.s.topology.services[0]
        proc = self.servers.get(service.name)
        if proc is None:
            return
        self.facts.baseline = self.settled(service.node, proc, Health(alive=True))
        target = str(self.s.topology.target_address(service, HOSTILE_NODE))
        cases = UDP_CASES if service.protocol == "udp" else TCP_CASES
        for case in cases:
            if not proc.running():
                break
            self.step(f"hostile: {case}")
            args = [case, "--host", target, "--port", str(service.port), "--kind", self.kind]
            argv = self.s.program("hostile", args)
            done = self.s.run(HOSTILE_NODE, argv, timeout=CASE_TIMEOUT)
            try:
                doc = json.loads(done.stdout.strip().splitlines()[-1])
                problems, facts = list(doc["problems"]), dict(doc["facts"])
            except (IndexError, ValueError, KeyError, TypeError):
                problems = [f"the hostile client failed: {done.stderr.strip()[-300:]}"]
                facts = {}
            if any(NOT_ANSWERED in p for p in problems):
                facts[HELD_FACT] = self.held(service.node, service.port)
            self.facts.cases.append(
                CaseResult(case, problems, facts, self.settled(service.node, proc))
            )
            self.facts.save(self.s.out_dir)
            if any(NOT_ANSWERED in p for p in problems):
                break  # the rest would each wait for a server that no longer answers

    def held(self, node: str, port: int) -> list[str]:
        """The TCP connections of the server's port that a process holds open (accepted,
        not merely queued), as "STATE PEER": what a server that no longer answers sits on,
        e.g. an iterative one in recv on a connection whose client left without a word."""
        argv = ["ss", "-Htnp", "state", "connected", "sport", "=", f":{port}"]
        lines = self.s.run(node, argv, timeout=10.0).stdout.splitlines()
        rows = [ln.split() for ln in lines if "users:(" in ln]
        return [f"{w[0]} {w[4]}" for w in rows if len(w) > 4]

    def health(self, node: str, proc: Proc) -> Health:
        if not proc.running():
            return Health(alive=False)
        states = self.s.run(node, ["ps", "-o", "stat=", "--ppid", str(proc.pid)], timeout=10.0)
        fds = self.s.run(node, ["ls", f"/proc/{proc.pid}/fd"], timeout=10.0)
        status = self.s.run(node, ["cat", f"/proc/{proc.pid}/status"], timeout=10.0)
        rss = [ln.split()[1] for ln in status.stdout.splitlines() if ln.startswith("VmRSS:")]
        return Health(
            alive=proc.running(),
            zombies=sum(1 for s in states.stdout.split() if s.startswith("Z")),
            children=sum(1 for s in states.stdout.split() if not s.startswith("Z")),
            fds=len(fds.stdout.split()) if fds.returncode == 0 else None,
            rss_kib=int(rss[0]) if rss and rss[0].isdigit() else 0,
        )

    def settled(self, node: str, proc: Proc, base: Health | None = None) -> Health:
        """The server's health once what the clients opened has had time to close: looked
        at again for up to 10 s while it still shows more than ``base`` (the baseline)."""
        base = base or self.facts.baseline or Health(alive=True)
        seen = self.health(node, proc)
        deadline = time.monotonic() + 10.0
        while (
            seen.alive
            and time.monotonic() < deadline
            and (
                seen.zombies > base.zombies or seen.children > base.children or seen.more_fds(base)
            )
        ):
            time.sleep(0.25)
            seen = self.health(node, proc)
        return seen

    def stop_service(self, name: str, proc: Proc) -> None:
        node = self.s.topology.service(name).node
        if proc.running():
            self.facts.children_at_stop = self.running(node, ["--ppid", str(proc.pid)])
        super().stop_service(name, proc)
        if self.facts.children_at_stop:
            pids = ",".join(str(p) for p in self.facts.children_at_stop)
            self.facts.left_after_stop = self.running(node, ["-p", pids])
        self.facts.save(self.s.out_dir)

    def running(self, node: str, select: list[str]) -> list[int]:
        """The processes ``ps`` selects that still run: not a zombie, which has exited (a
        server that never reaped leaves its zombies to init, which may not have reaped
        them yet when ``ps`` looks)."""
        argv = ["ps", "-o", "pid=,stat=", *select]
        return running_pids(self.s.run(node, argv, timeout=10.0).stdout)


def running_pids(ps_output: str) -> list[int]:
    """The pids of ``ps -o pid=,stat=`` lines whose state is not Z."""
    rows = [line.split() for line in ps_output.splitlines()]
    return [int(r[0]) for r in rows if len(r) == 2 and r[0].isdigit() and r[1][0] != "Z"]


def grade_run(
    topology: Topology, backend_cls: type[Backend], out_dir: Path, kind: str, say: Progress
) -> tuple[RunRecord | None, str | None]:
    """Run the graded lab; returns the run's record (None if it never started) and the
    error that ended it, if any. Teardown is the run's own: nothing is left running."""
    facts = GradeFacts()

    def make(s: Session, r: RunRecord, p: Progress, b: dict[str, Built]) -> runner.Flow:
        return GradeFlow(s, r, p, b, kind=kind, facts=facts)

    try:
        return runner.run_lab(topology, backend_cls, out_dir, progress=say, flow=make), None
    except LabError as exc:
        return None, str(exc)
