"""A small process supervisor for one lab node in a container (the ``compose.yaml`` lab).

It takes everything it runs as arguments, so that no value of a topology ever passes
through a shell::

    python3 -m lab.programs.supervise [options] -- JOB...

    JOB is  serve  NAME COUNT ARG1 ... ARGn   (a server, kept running)
       or   client NAME COUNT ARG1 ... ARGn   (run to completion, one after another)

COUNT says how many arguments the job's command has, so that any argument (even ``--`` or
``client``) is taken literally. In order, the supervisor:

1. sets the default route (``--gateway``), when the node reaches other networks through
   a router;
2. starts one tcpdump per interface (``--capture``), writing ``RESULTS/NODE/IFACE.pcap``,
   and waits until each says it is listening, so that no packet of the demo is missed;
3. starts the ``serve`` jobs and polls ``/proc/net`` until every ``--listen`` port is open;
4. writes the ready file (``--ready-file``) that the container's health check looks for;
5. runs the ``client`` jobs one after another, printing what each gets back;
6. with client jobs and no servers: waits for the node's TCP connections to finish
   closing (when capturing, so that the captures hold the whole close), stops everything
   and exits with the first failing client status (0 when all succeeded). A node with
   servers runs on until SIGTERM/SIGINT (other nodes may still need them), which it
   forwards to its children before reaping them; it then exits with its clients' status.

Every line a job prints (stdout and stderr) is shown prefixed with the job's name and kept
in ``RESULTS/NODE/NAME.log``; ``interfaces.json`` maps the node's interfaces to addresses.

``--check`` is the container's health check: exit 0 when the ready file exists and every
``--listen`` port is open.

Standard library only: this runs inside the node image.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from lab.programs.supervise_children import Child, LogFile, describe_status, pump
from lab.programs.supervise_net import (
    Listen,
    capture_interfaces,
    closing_connections,
    interface_address,
    open_ports,
)

READY_FILE = "/tmp/socket-lab-supervise.ready"
POLL_SECONDS = 0.05
LISTEN_TIMEOUT = 30.0
CAPTURE_TIMEOUT = 15.0
SETTLE_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0

JOB_KINDS = ("serve", "client")


class SuperviseError(Exception):
    """Something the supervisor could not do; reported in one line, exit status 1."""


@dataclass(frozen=True)
class Job:
    kind: str  # "serve" or "client"
    name: str
    argv: tuple[str, ...]


def say(message: str) -> None:
    """One line on stderr in a single write, so lines from pump threads never interleave."""
    os.write(2, f"supervise: {message}\n".encode("utf-8", "replace"))


# -- arguments ------------------------------------------------------------------------------


def listen_spec(text: str) -> Listen:
    proto, sep, port = text.partition(":")
    if not sep or proto not in ("tcp", "udp") or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected tcp:PORT or udp:PORT, got {text!r}")
    number = int(port)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {number}")
    return Listen(proto, number)


def parse_jobs(words: Sequence[str]) -> list[Job]:
    """``serve NAME COUNT ARG...`` and ``client NAME COUNT ARG...`` groups, in order."""
    jobs: list[Job] = []
    i = 0
    while i < len(words):
        if len(words) - i < 3:
            raise SuperviseError(f"incomplete job at {' '.join(words[i:])!r}")
        kind, name, count = words[i], words[i + 1], words[i + 2]
        if kind not in JOB_KINDS:
            raise SuperviseError(f"a job starts with serve or client, got {kind!r}")
        if not name or "/" in name or name.startswith("."):
            raise SuperviseError(f"bad job name {name!r}")
        if not count.isdigit() or int(count) < 1:
            raise SuperviseError(f"job {name}: argument count must be a positive integer")
        end = i + 3 + int(count)
        if end > len(words):
            raise SuperviseError(f"job {name}: {count} arguments announced, fewer given")
        jobs.append(Job(kind, name, tuple(words[i + 3 : end])))
        i = end
    names = [job.name for job in jobs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SuperviseError(f"job names must be unique: {', '.join(duplicates)}")
    return jobs


def job_words(kind: str, name: str, argv: Sequence[str]) -> list[str]:
    """The arguments that describe one job (the inverse of ``parse_jobs``)."""
    return [kind, name, str(len(argv)), *argv]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m lab.programs.supervise",
        description="Run a lab node's captures, servers and clients (see the module doc).",
    )
    parser.add_argument("--node", default=socket.gethostname(), help="node name (for paths)")
    parser.add_argument("--results", type=Path, help="results folder; files go to RESULTS/NODE")
    parser.add_argument("--capture", action="store_true", help="tcpdump on every interface")
    parser.add_argument("--snaplen", type=int, default=262144, help="tcpdump -s")
    parser.add_argument("--buffer", type=int, default=2048, help="tcpdump -B (KiB)")
    parser.add_argument("--filter", default="", help="capture filter (one argument)")
    parser.add_argument("--gateway", help="default route via this address")
    parser.add_argument(
        "--listen", type=listen_spec, action="append", default=[], help="tcp:PORT or udp:PORT"
    )
    parser.add_argument("--ready-file", type=Path, default=Path(READY_FILE))
    parser.add_argument(
        "--check", action="store_true", help="health check: ready file and --listen ports"
    )
    return parser


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Options before the first ``--``, jobs after it."""
    words = list(argv)
    if "--" in words:
        cut = words.index("--")
        return words[:cut], words[cut + 1 :]
    return words, []


class Supervisor:
    def __init__(self, args: argparse.Namespace, jobs: list[Job]) -> None:
        self.args = args
        self.jobs = jobs
        self.out_dir: Path | None = args.results / args.node if args.results else None
        self.children: list[Child] = []
        self.captures: list[Child] = []
        self.stop_signal: int | None = None
        # The clients' combined status once they have all run; None until then.
        self.client_status: int | None = None

    # -- signals --------------------------------------------------------------------------
    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Remember the first stop signal and pass it on to every child at once."""
        if self.stop_signal is None:
            self.stop_signal = signum
            say(f"{signal.Signals(signum).name}: stopping")
        for child in self.children:
            child.signal(signum)

    def install_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.on_signal)

    def check_stop(self) -> None:
        if self.stop_signal is not None:
            raise Stopped(self.stop_signal)

    # -- starting -------------------------------------------------------------------------
    def log_file(self, name: str) -> LogFile | None:
        if self.out_dir is None:
            return None
        return LogFile(self.out_dir / f"{name}.log")

    def start(
        self, name: str, argv: Sequence[str], on_err_line: Callable[[bytes], None] | None = None
    ) -> Child:
        self.check_stop()
        # A session of its own: only this supervisor signals it, exactly once per signal.
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        child = Child(name, proc)
        self.children.append(child)
        prefix = f"{name}| ".encode()
        log = self.log_file(name)
        assert proc.stdout is not None and proc.stderr is not None
        child.pumps.append(pump(proc.stdout, 1, prefix, log))
        child.pumps.append(pump(proc.stderr, 2, prefix, log, on_err_line))
        return child

    def set_gateway(self) -> None:
        argv = ["ip", "route", "replace", "default", "via", self.args.gateway]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SuperviseError(f"{' '.join(argv)}: {done.stderr.strip()}")
        say(f"default route via {self.args.gateway}")

    def write_interfaces(self, names: list[str]) -> None:
        if self.out_dir is None:
            return
        table = {name: interface_address(name) for name in names}
        (self.out_dir / "interfaces.json").write_text(json.dumps(table, indent=2) + "\n")

    def start_captures(self, names: list[str]) -> None:
        assert self.out_dir is not None
        for iface in names:
            ready = threading.Event()

            def seen(line: bytes, ready: threading.Event = ready) -> None:
                if b"listening on" in line:
                    ready.set()

            # --immediate-mode: packets are handed over as they arrive, not in blocks
            # retired every second, so stopping tcpdump right after a demo loses none.
            argv = ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-Z", "root"]
            argv += ["-s", str(self.args.snaplen), "-B", str(self.args.buffer)]
            argv += ["-w", str(self.out_dir / f"{iface}.pcap")]
            if self.args.filter:
                argv.append(self.args.filter)
            child = self.start(f"tcpdump-{iface}", argv, seen)
            self.captures.append(child)
            self.wait_for(
                ready.is_set, CAPTURE_TIMEOUT, f"tcpdump on {iface} to start", watch=[child]
            )
        if names:
            say(f"capturing on {', '.join(names)} into {self.out_dir}")

    def wait_for(
        self, done: Callable[[], bool], timeout: float, what: str, watch: Sequence[Child] = ()
    ) -> None:
        """Poll ``done`` until it holds; fail if a watched child exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not done():
            self.check_stop()
            for child in watch:
                code = child.status()
                if code is not None:
                    raise SuperviseError(f"{child.name} {describe_status(code)} before {what}")
            if time.monotonic() > deadline:
                raise SuperviseError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(POLL_SECONDS)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> int:
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.args.gateway:
            self.set_gateway()
        names = capture_interfaces()
        self.write_interfaces(names)
        if self.args.capture and self.out_dir is not None:
            self.start_captures(names)
        servers = [self.start(job.name, job.argv) for job in self.jobs if job.kind == "serve"]
        wanted = set(self.args.listen)
        self.wait_for(
            lambda: wanted <= open_ports(),
            LISTEN_TIMEOUT,
            "listening on " + ", ".join(sorted(map(str, wanted))),
            watch=servers,
        )
        if wanted:
            say("listening on " + ", ".join(sorted(map(str, wanted))))
        self.args.ready_file.write_text(f"{os.getpid()}\n")
        clients = [job for job in self.jobs if job.kind == "client"]
        self.client_status = self.run_clients(clients)
        if clients and not servers:
            if self.captures:
                self.wait_for_quiet()
            return self.client_status
        say("ready; running until SIGTERM or SIGINT")
        self.serve_until_stopped(servers)
        return 0

    def run_clients(self, clients: list[Job]) -> int:
        first_failure = 0
        for job in clients:
            say(f"client {job.name}: {' '.join(job.argv)}")
            code = self.start(job.name, job.argv).wait()
            assert code is not None
            # A stop that came once the client had ended well leaves its run counted; one
            # that cut it short (the forwarded signal's status) stops the node unfinished.
            if code != 0:
                self.check_stop()
            say(f"client {job.name}: {describe_status(code)}")
            if code != 0 and first_failure == 0:
                first_failure = code if code > 0 else 128 - code
        return first_failure

    def wait_for_quiet(self) -> None:
        """Let this host's closes finish so that the captures end with the last ACK."""
        try:
            self.wait_for(lambda: closing_connections() == 0, SETTLE_TIMEOUT, "closes to end")
        except SuperviseError as exc:
            say(f"{exc}; stopping anyway")

    def serve_until_stopped(self, servers: list[Child]) -> None:
        while True:
            self.check_stop()
            for child in servers + self.captures:
                code = child.status()
                if code is not None:
                    raise SuperviseError(f"{child.name} {describe_status(code)} unexpectedly")
            time.sleep(POLL_SECONDS * 4)

    def stop_all(self) -> None:
        """Servers and clients first, captures last, so the captures see every close."""
        for group in (
            [c for c in self.children if c not in self.captures],
            self.captures,
        ):
            for child in group:
                child.signal(signal.SIGTERM)
            for child in group:
                if child.wait(STOP_TIMEOUT) is None:
                    say(f"{child.name} ignored SIGTERM; killing it")
                    child.signal(signal.SIGKILL)
                    child.wait()


class Stopped(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def check(args: argparse.Namespace) -> int:
    """The health check: 0 when the supervisor is ready and every port is still open."""
    if not args.ready_file.exists():
        print(f"not ready: {args.ready_file} does not exist")
        return 1
    missing = sorted(map(str, set(args.listen) - open_ports()))
    if missing:
        print("not listening: " + ", ".join(missing))
        return 1
    print("ready")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    options, job_args = split_argv(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(options)
    if args.check:
        return check(args)
    try:
        jobs = parse_jobs(job_args)
    except SuperviseError as exc:
        build_parser().error(str(exc))
    sup = Supervisor(args, jobs)
    sup.install_signals()
    # A stale ready file would make the health check pass before this run is ready.
    args.ready_file.unlink(missing_ok=True)
    try:
        return sup.run()
    except Stopped as stop:
        if not any(job.kind == "client" for job in jobs):
            return 0  # a server node's normal end
        if sup.client_status is not None:
            return sup.client_status  # stopped after the clients had all run
        return 128 + stop.signum
    except (SuperviseError, OSError) as exc:
        say(f"error: {exc}")
        return 1
    finally:
        sup.stop_all()
        args.ready_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
