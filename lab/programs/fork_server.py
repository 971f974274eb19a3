"""Fork-per-connection upper-casing echo server (default port 9999).

The parent accepts and closes the connected socket; the child closes the listening socket
and serves. The SIGCHLD handler, a ``waitpid(-1, WNOHANG)`` loop, is installed before the
first fork, and SIGCHLD (with SIGTERM/SIGINT) is blocked from fork() until the child's pid
is recorded, so a child that exits at once is never reaped before the parent knows it.

``--close-delay S``: after a client's EOF the child waits S seconds before closing, so its
ACK of the client's FIN leaves alone and its own FIN later: a close in four segments
(without it Linux usually folds the ACK into the FIN, which follows at once).

``--no-reap`` installs no handler: exited children stay zombies until the server exits.
``--double-fork``: the child forks a grandchild to serve and exits at once; the parent waits
only for that short-lived child, and the grandchild is re-parented to init. So that
grandchildren never outlive the server, each inherits the read end of a "lifeline" pipe
whose write end only the server holds: when the server exits (or is killed) the pipe reads
EOF and the grandchild ends itself. A second pipe, whose write ends only grandchildren keep,
reads EOF once they have all gone; the server waits for that at shutdown.

On SIGTERM/SIGINT the server signals its children with SIGTERM, reaps them (SIGKILL after
a grace period), closes the listening socket and exits 0.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from types import FrameType

from lab.programs.common import (
    Peer,
    Shutdown,
    parse_server_args,
    serve_lines,
    serve_tcp,
    tcp_server_parser,
    upper_case,
)
from lab.programs.wrap import errno_text, log, tcp_listener

DEFAULT_PORT = 9999
# How long children get to finish after SIGTERM before SIGKILL, at shutdown.
STOP_GRACE_SECONDS = 3.0
# Blocked from fork() until the child's pid is recorded: SIGCHLD so the child cannot be
# reaped before it is known, SIGTERM/SIGINT so shutdown cannot begin with it untracked.
_FORK_WINDOW = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# signal.pthread_sigmask is a Python wrapper that turns the old mask it returns into a set
# of Signals members, one enum lookup per signal. Twice per connection in the parent, right
# after fork(), that is code and objects touched while every page is shared copy-on-write
# with the new child, each first write a page copied (cProfile under churn: a tenth of a
# millisecond per connection). The C function it wraps, from the standard library's own
# _signal, takes and returns plain numbers; it is the same system call.
_sigmask: Callable[[int, Iterable[int]], set[int]] = importlib.import_module(
    "_signal"
).pthread_sigmask


def _status(raw: int) -> int:
    """Exit code, or minus the signal number that ended the process."""
    return os.waitstatus_to_exitcode(raw)


def _unreaped_child(pid: int) -> bool:
    """Whether ``pid`` is a child of ours not yet reaped (running or a zombie), so that no
    other process can have its number. Looks without reaping it."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


class ForkServer:
    def __init__(
        self, listener: socket.socket, reap: bool, double_fork: bool, close_delay: float = 0.0
    ) -> None:
        self.listener = listener
        self.reap = reap
        self.double_fork = double_fork
        self.close_delay = close_delay
        self.children: set[int] = set()  # forked and not yet reaped: safe to signal
        self.lifeline: tuple[int, int] | None = None
        self.alive: tuple[int, int] | None = None

    # -- reaping -------------------------------------------------------------------------
    def on_sigchld(self, signum: int, frame: FrameType | None) -> None:
        """Reap every child that has exited: one SIGCHLD may stand for several exits.
        SIGTERM/SIGINT wait until they are all reaped, forgotten and logged: the shutdown
        they raise, landing between a child's forgetting and its log line, would leave a
        child that shutdown can no longer account for. One mask for the whole loop, not one
        per child: the loop is as short as the exits it finds, and that spares two system
        calls per child."""
        old_mask = _sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            while True:
                try:
                    pid, raw = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
                self.children.discard(pid)
                log(f"reaped pid={pid} status={_status(raw)}")
        finally:
            _sigmask(signal.SIG_SETMASK, old_mask)

    def stop_children(self) -> None:
        """SIGTERM every unreaped child, reap each (SIGKILL after the grace period)."""
        # Reaping from here on is done only below: a handler running in between could
        # reap a pid that the kill() below then hits after the pid was reused.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # The SIGTERM that stopped the server may have cut the SIGCHLD handler short
        # between reaping a child and forgetting it: keep only pids still ours.
        for pid in [pid for pid in self.children if not _unreaped_child(pid)]:
            self.children.discard(pid)
            log(f"reaped pid={pid} status=unknown (as the shutdown signal arrived)")
        for pid in self.children:
            os.kill(pid, signal.SIGTERM)  # unreaped, so the pid is still ours
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for pid in sorted(self.children):
            raw = self._wait_until(pid, deadline)
            if raw is None:
                os.kill(pid, signal.SIGKILL)
                _, raw = os.waitpid(pid, 0)
            log(f"reaped pid={pid} status={_status(raw)}")
        self.children.clear()
        if self.double_fork:
            self._stop_grandchildren()

    @staticmethod
    def _wait_until(pid: int, deadline: float) -> int | None:
        while True:
            got, raw = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                return raw
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def _stop_grandchildren(self) -> None:
        assert self.lifeline is not None and self.alive is not None
        os.close(self.lifeline[1])  # grandchildren see EOF and end themselves
        os.close(self.alive[1])
        ready, _, _ = select.select([self.alive[0]], [], [], STOP_GRACE_SECONDS + 1.0)
        if ready:
            while os.read(self.alive[0], 4096):
                pass  # nothing is ever written: EOF means every grandchild has exited
        else:
            log("error shutdown: grandchildren still running")
        os.close(self.alive[0])
        os.close(self.lifeline[0])

    # -- serving -------------------------------------------------------------------------
    def run(self, backlog: int) -> int:
        if self.reap and not self.double_fork:
            # Before the first fork: a child that exits early must not be missed.
            signal.signal(signal.SIGCHLD, self.on_sigchld)
        if self.double_fork:
            self.lifeline = os.pipe()
            self.alive = os.pipe()
        # Every fork() shares the parent's pages with the child until one of them writes:
        # frozen, the objects created so far are never walked by a collection in either,
        # so collections do not copy pages the processes could have kept sharing. The
        # garbage of start-up (the argument parser's cycles, among others) is collected
        # first rather than frozen with the rest: under churn, the parent and its children
        # then copy about 15 pages fewer per connection (perf stat's page faults).
        gc.collect()
        gc.freeze()
        return serve_tcp(self.listener, backlog, self.handle, self.stop_children)

    def handle(self, conn: socket.socket, peer: Peer) -> None:
        old_mask = _sigmask(signal.SIG_BLOCK, _FORK_WINDOW)
        try:
            try:
                pid = os.fork()
            except OSError as exc:
                log(f"error fork: {errno_text(exc)}")
                conn.close()
                return
            if pid == 0:
                self._child(conn, peer, old_mask)  # never returns
            self.children.add(pid)
        finally:
            _sigmask(signal.SIG_SETMASK, old_mask)
        conn.close()  # the child has its own copy; the parent must drop its reference
        if self.double_fork:
            # The child only forks the grandchild and exits: wait for it right here.
            _, raw = os.waitpid(pid, 0)
            self.children.discard(pid)
            log(f"reaped pid={pid} status={_status(raw)}")

    def _child(self, conn: socket.socket, peer: Peer, old_mask: set[int | signal.Signals]) -> None:
        code = 0
        # The child lives for one connection: a collection would only walk (and so copy,
        # page by page) the objects it shares with the parent.
        gc.disable()
        try:
            # The SIGTERM/SIGINT handlers are the parent's, inherited across fork().
            if self.double_fork:
                # Only this child has children (the grandchild): it must not reap them
                # with the parent's handler, whose bookkeeping is the parent's.
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _sigmask(signal.SIG_SETMASK, old_mask)
            self.listener.close()
            if self.double_fork:
                self._fork_grandchild(conn, peer)
            else:
                serve_lines(conn, peer, f"pid={os.getpid()}", upper_case, self.close_delay)
        except Shutdown:
            pass
        except BaseException as exc:
            log(f"error child: {type(exc).__name__}: {exc}")
            code = 1
        finally:
            os._exit(code)

    def _fork_grandchild(self, conn: socket.socket, peer: Peer) -> None:
        assert self.lifeline is not None and self.alive is not None
        os.close(self.lifeline[1])
        os.close(self.alive[0])
        if os.fork() > 0:
            return  # the short-lived child: exit now, the caller's os._exit
        # Imported here, in the grandchild only: once a process has imported threading,
        # every fork() of it runs threading's own at-fork handler in the child, Python code
        # that writes (and so copies) pages, and the server forks once per connection.
        import threading

        watcher = threading.Thread(
            target=_watch_lifeline, args=(self.lifeline[0],), name="lifeline", daemon=True
        )
        watcher.start()
        serve_lines(conn, peer, f"pid={os.getpid()}", upper_case, self.close_delay)


def _watch_lifeline(fd: int) -> None:
    """In a grandchild: when the server has gone, stop like on SIGTERM, then for sure."""
    while os.read(fd, 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_GRACE_SECONDS)
    os._exit(1)


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0..3600 seconds, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = tcp_server_parser(
        "python3 -m lab.programs.fork_server",
        "Fork-per-connection upper-casing echo server.",
        DEFAULT_PORT,
    )
    parser.add_argument(
        "--no-reap",
        action="store_true",
        help="install no SIGCHLD handler: finished children stay zombies until exit",
    )
    parser.add_argument(
        "--double-fork",
        action="store_true",
        help="serve in a grandchild; the parent waits only for the short-lived child",
    )
    parser.add_argument(
        "--close-delay",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="after a client's EOF, wait S seconds before closing (a four-segment close)",
    )
    args = parse_server_args(parser, argv)
    listener = tcp_listener(args.host, args.port, args.backlog, args.reuseaddr)
    server = ForkServer(
        listener,
        reap=not args.no_reap,
        double_fork=args.double_fork,
        close_delay=args.close_delay,
    )
    return server.run(args.backlog)


if __name__ == "__main__":
    sys.exit(main())
