"""What the process snapshots say about a concurrent server: a child per connection
(fork) or a thread per connection (threads), and whether dead children are reaped.

Holds both the built-in checks of the fork and thread servers and the claims that an
experiment states about them by name.
"""

from __future__ import annotations

from lab.evidence.analysis.snapshots import ProcessRow, children, zombies
from lab.evidence.folder import Evidence
from lab.i18n import msg
from lab.spec.model import Scenario, Service, Topology
from lab.verdict.check import Check


def held_connections(topo: Topology, service: Service) -> int:
    """Connections held open on a service at the "during" snapshot (scenarios run at once)."""
    return sum(
        sc.total_connections for sc in topo.scenarios if sc.service == service.name and sc.hold > 0
    )


def served_connections(topo: Topology, service: Service) -> int:
    return sum(sc.total_connections for sc in topo.scenarios if sc.service == service.name)


def service_pid(ev: Evidence, service: Service) -> int | None:
    info = ev.record.services.get(service.name)
    return info.pid if info is not None and info.pid else None


def _live_children(during: list[ProcessRow], pid: int) -> list[ProcessRow]:
    return [r for r in children(during, pid) if not r.zombie]


def _threads(during: list[ProcessRow], pid: int) -> tuple[bool, int, int]:
    """(found, child processes, threads) of ``pid`` in a process snapshot."""
    me = next((r for r in during if r.pid == pid), None)
    return me is not None, len(children(during, pid)), me.nlwp if me else 0


# -- the built-in checks of the fork and thread servers ------------------------------------


def fork_checks(topo: Topology, ev: Evidence, service: Service) -> list[Check]:
    pid = service_pid(ev, service)
    if pid is None:
        return [Check("fork server", False, "the service never started")]
    checks = []
    held = held_connections(topo, service)
    during = ev.processes(service.node, "during")
    if held and not service.option("double_fork") and during is not None:
        kids = _live_children(during, pid)
        said = msg("detail.live_children", kids=len(kids), pid=pid, held=held)
        checks.append(Check.said("one child per connection", len(kids) == held, said))
    return [*checks, _reaping(topo, ev, service, pid)]


def _reaping(topo: Topology, ev: Evidence, service: Service, pid: int) -> Check:
    """Zombies after the clients left: none, or with ``--no-reap`` one per connection."""
    after = ev.processes(service.node, "after")
    if after is None:
        return Check.said("children reaped", False, msg("detail.no_after"))
    dead = zombies(after, pid)
    if service.option("no_reap"):
        want = 0 if service.option("double_fork") else served_connections(topo, service)
        said = msg("detail.zombies_expected", count=len(dead), pid=pid, want=want)
        return Check.said("zombies kept (--no-reap)", len(dead) == want, said)
    said = msg("detail.zombies_after", count=len(dead), pid=pid, how="")
    return Check.said("children reaped", not dead, said)


def thread_checks(topo: Topology, ev: Evidence, service: Service) -> list[Check]:
    pid = service_pid(ev, service)
    held = held_connections(topo, service)
    during = ev.processes(service.node, "during")
    if pid is None or during is None or not held:
        return [] if held == 0 else [Check("one process", False, "no 'during' evidence")]
    found, kids, threads = _threads(during, pid)
    ok = found and not kids and threads >= held + 1
    said = msg("detail.threads", pid=pid, kids=kids, threads=threads, held=held)
    return [Check.said("one process, a thread per connection", ok, said)]


# -- the claims --------------------------------------------------------------------------------


def n_children(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """N held connections -> N live children of the server."""
    name = "N connections, N children"
    service = topo.service(sc.service)
    pid, held = service_pid(ev, service), held_connections(topo, service)
    during = ev.processes(service.node, "during")
    if pid is None or during is None:
        return Check(name, False, "no server pid or no 'during' snapshot")
    if not held:
        return Check(name, False, "no scenario holds connections on the service (set hold)")
    kids = _live_children(during, pid)
    said = msg("detail.live_children", kids=len(kids), pid=pid, held=held)
    return Check.said(name, len(kids) == held, said)


def _zombie_count(topo: Topology, ev: Evidence, sc: Scenario) -> tuple[int, int | None, str]:
    service = topo.service(sc.service)
    pid = service_pid(ev, service)
    after = ev.processes(service.node, "after")
    if pid is None or after is None:
        return -1, pid, "no server pid or no 'after' snapshot"
    return len(zombies(after, pid)), pid, ""


def children_reaped(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """After the clients left, the server has no zombie child."""
    name = "children reaped"
    count, pid, problem = _zombie_count(topo, ev, sc)
    if problem:
        return Check(name, False, problem)
    service = topo.service(sc.service)
    how = msg("detail.no_reap") if service.option("no_reap") else ""
    said = msg("detail.zombies_after", count=count, pid=pid, how=how)
    return Check.said(name, count == 0, said)


def zombies_kept(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """Without reaping, every served connection leaves one zombie child."""
    name = "N zombies"
    count, pid, problem = _zombie_count(topo, ev, sc)
    if problem:
        return Check(name, False, problem)
    want = served_connections(topo, topo.service(sc.service))
    said = msg("detail.zombies_expected", count=count, pid=pid, want=want)
    return Check.said(name, count == want, said)


def one_process_n_threads(topo: Topology, ev: Evidence, sc: Scenario) -> Check:
    """N held connections -> one process (no child) with N+1 threads (one per connection,
    plus the accepting main thread)."""
    name = "one process, N+1 threads"
    service = topo.service(sc.service)
    pid, held = service_pid(ev, service), held_connections(topo, service)
    during = ev.processes(service.node, "during")
    if pid is None or during is None or not held:
        return Check(name, False, "no server pid, no 'during' snapshot or no held connections")
    found, kids, threads = _threads(during, pid)
    said = msg(
        "detail.threads_expected", pid=pid, kids=kids, threads=threads, held=held, want=held + 1
    )
    return Check.said(name, found and not kids and threads == held + 1, said)
