"""The services' steps of ``lab run``: start them all at once and wait until each listens,
stop them all at once at the end, and wait for a fork server's children to exit."""

from __future__ import annotations

import contextlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from lab.errors import BackendError
from lab.i18n import msg, t
from lab.run.backends.base import Proc
from lab.run.collect import LOCAL_LOOK, read_node_file, read_start, wait_until
from lab.run.record import RunRecord, ServiceRecord
from lab.run.session import Progress, Session
from lab.run.userbuild import LOG_CAP, STOP_GRACE, Built, command
from lab.spec.model import Service

LISTEN_TIMEOUT = 20.0  # seconds a service has to listen after it starts
PROBE_EVERY = 0.05  # seconds at most between two looks at a starting service's sockets
PARALLEL = 16  # services started or stopped at once
# Seconds a reaping fork server gets, once its children have exited, to reap the last of
# them before the "after" snapshot; one that never reaps them costs this much once.
REAP_GRACE = 1.0
# Seconds, beyond its close_delay, a server gets to close the connections a scenario that
# claims close-wait-on-server left in CLOSE_WAIT; one that never closes them costs this once.
CLOSE_GRACE = 1.0


class ServiceSteps:
    """Starting and stopping the topology's services; the run's flow supplies the rest."""

    s: Session
    record: RunRecord
    say: Progress
    built: dict[str, Built]
    servers: dict[str, Proc]

    def start_services(self, services: tuple[Service, ...]) -> None:
        """Start every service at once, each waited on until it listens; then put the
        records back in file order (they were made in the order the services listened).
        The first failure, in file order, is raised once all have started or failed."""
        if not services:
            return
        pool = ThreadPoolExecutor(max_workers=min(len(services), PARALLEL))
        try:
            futures = [pool.submit(self.start_service, service) for service in services]
            errors = [f.exception() for f in futures]
        finally:
            # On a signal the waits still under way end at their next look (check_signal).
            pool.shutdown(wait=False, cancel_futures=True)
        self.servers = {s.name: self.servers[s.name] for s in services if s.name in self.servers}
        names = [s.name for s in services if s.name in self.record.services]
        self.record.services = {n: self.record.services[n] for n in names}
        for error in errors:
            if error is not None:
                raise error

    def start_service(self, service: Service) -> None:
        log = f"service-{service.name}.log"
        argv = self.service_argv(service)
        proc = self.s.spawn(service.node, argv, log)
        self.servers[service.name] = proc
        self.record.services[service.name] = ServiceRecord(
            node=service.node,
            program=service.program,
            port=service.port,
            protocol=service.protocol,
            options=dict(service.options),
            pid=proc.pid,
            log=f"{service.node}/{log}",
        )

        def running() -> bool:
            self.s.check_signal()
            if not proc.running():
                text = read_node_file(self.s, service.node, self.s.workdir(service.node) / log)
                raise BackendError.said(
                    msg(
                        "error.exited_before_listening",
                        service=service.name,
                        program=service.program,
                        node=service.node,
                        log=text.strip()[-500:],
                    )
                )
            return True

        # The lab's servers log "listening" right after listen(). Where this host can read
        # that log itself, it is looked at every few milliseconds (no command run), and
        # `ss` is asked as soon as it says so; otherwise (or if it never does) `ss` is
        # asked as often as without the log.
        here = self.s.backend.local_path(service.node, self.s.workdir(service.node) / log)
        if service.user is not None:
            here = None
        last_ss = time.monotonic()
        log_said = False

        def listening() -> bool:
            nonlocal last_ss, log_said
            running()
            if here is not None:
                if not log_said and said_listening(read_start(here)):
                    log_said = True  # `ss` now, however recently it was asked
                elif time.monotonic() - last_ss < PROBE_EVERY:
                    return False
                last_ss = time.monotonic()
            return bool(self.listen_socket(service))

        every = LOCAL_LOOK if here is not None else PROBE_EVERY
        try:
            wait_until(
                listening,
                timeout=LISTEN_TIMEOUT,
                what=f"service {service.name} to listen",
                interval=min(every, 0.02),
                most=every,
            )
        except BackendError as exc:
            if not proc.running() or "timed out" not in str(exc):
                raise
            said = msg(
                "error.never_listened",
                service=service.name,
                program=service.program,
                node=service.node,
                protocol=service.protocol,
                port=service.port,
                timeout=LISTEN_TIMEOUT,
            )
            raise BackendError.said(said) from None
        self.say(
            t(
                "progress.listening",
                service=service.name,
                node=service.node,
                port=service.port,
            )
        )

    def service_argv(self, service: Service) -> list[str]:
        """A lab program's argument list, or a user program's, bounded (``userbuild``)."""
        if service.user is None:
            return self.s.program(service.program, service.args())
        host = str(self.s.topology.node(service.node).interfaces[0].address)
        run = service.user.argv(host, service.port, client=False)
        built = self.built[service.program]
        return command(self.s.backend.python, built, service.node, run, self.s.user_uid())

    def listen_socket(self, service: Service) -> str:
        """The service's listening socket as ``ss`` shows it on its node, "" if none."""
        flag = "-Hlnt" if service.protocol == "tcp" else "-Hlnu"
        probe = ["ss", flag, "sport", "=", f":{service.port}"]
        return self.s.run(service.node, probe, timeout=10.0).stdout.strip()

    def stop_services(self) -> None:
        """Stop every running service at once: each one's grace period runs alongside the
        others' rather than after them."""
        if not self.servers:
            return
        items = list(self.servers.items())
        with ThreadPoolExecutor(max_workers=min(len(items), PARALLEL)) as pool:
            list(pool.map(lambda item: self.stop_service(*item), items))

    def stop_service(self, name: str, proc: Proc) -> None:
        """Stop a service, noting whether it was still running: one that ended on its own
        (crashed, or killed from outside) is a fault of the run, not a clean stop."""
        info = self.record.services[name]
        info.ended_before_stop = not proc.running()
        if self.s.topology.service(name).user is None:
            info.exit_status = proc.stop(timeout=10.0)
            return
        # A user's program may ignore SIGTERM: kill it after a grace period, and say so.
        proc.signal(signal.SIGTERM)
        status = proc.wait(STOP_GRACE)
        info.killed_after_grace = status is None
        if status is None:
            self.say(t("warning.not_stopped", service=name, grace=STOP_GRACE))
            status = proc.stop(timeout=STOP_GRACE, signum=signal.SIGKILL)
        info.exit_status = status
        self.note_truncated_log(name, info)

    def note_truncated_log(self, name: str, info: ServiceRecord) -> None:
        """A user program's log stops at ``LOG_CAP`` bytes (RLIMIT_FSIZE): say so."""
        path = self.s.workdir(info.node) / info.log.split("/", 1)[1]
        size = self.s.run(info.node, ["stat", "-c", "%s", str(path)], timeout=10.0).stdout.strip()
        if size.isdigit() and int(size) >= LOG_CAP:
            info.log_truncated = True
            self.say(t("warning.log_cut", service=name, cap=LOG_CAP))

    def settle(self) -> None:
        """After the clients: wait until every fork server's children have exited, so the
        "after" snapshot shows reaping (or, with --no-reap, the zombies) and not a child
        that is still closing."""
        for name, proc in self.servers.items():
            service = self.s.topology.service(name)
            if service.model != "fork":
                continue
            probe = ["ps", "-o", "stat=", "--ppid", str(proc.pid)]

            def children_exited(node: str = service.node, probe: list[str] = probe) -> bool:
                states = self.s.run(node, probe, timeout=10.0).stdout.split()
                return all(state.startswith("Z") for state in states)

            try:
                wait_until(
                    children_exited,
                    timeout=10.0,
                    what=f"{name}'s children to exit",
                    most=PROBE_EVERY,
                )
            except BackendError as exc:
                self.say(t("warning.line", text=exc.text()))
                continue
            if not service.option("no_reap"):
                # A child's exit and its reaping by the server's SIGCHLD handler are
                # moments apart: give a reaping server those, so that a zombie in "after"
                # is one it left, not one it was about to reap.
                def reaped(node: str = service.node, probe: list[str] = probe) -> bool:
                    return not self.s.run(node, probe, timeout=10.0).stdout.split()

                with contextlib.suppress(BackendError):
                    wait_until(reaped, timeout=REAP_GRACE, what="", most=PROBE_EVERY)
        self.settle_close_waits()

    def settle_close_waits(self) -> None:
        """Before "after": the servers of scenarios that claim close-wait-on-server are
        given their close_delay and CLOSE_GRACE to close, so that a connection still in
        CLOSE_WAIT there is one the server never closed, not one it was closing."""
        topo = self.s.topology
        claimed = {sc.service for sc in topo.scenarios if "close-wait-on-server" in sc.claims}
        for service in map(topo.service, sorted(claimed)):
            probe = ["ss", "-Htn", "state", "close-wait", "sport", "=", f":{service.port}"]

            def closed(node: str = service.node, probe: list[str] = probe) -> bool:
                return not self.s.run(node, probe, timeout=10.0).stdout.strip()

            delay = service.option("close_delay")
            grace = CLOSE_GRACE + (float(delay) if isinstance(delay, int | float) else 0.0)
            with contextlib.suppress(BackendError):
                wait_until(closed, timeout=grace, what="", most=PROBE_EVERY)


def said_listening(log: bytes) -> bool:
    """A lab server's log has its "listening" line (``lab.programs.common``)."""
    return log.startswith(b"listening ") or b"\nlistening " in log
