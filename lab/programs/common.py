"""What the servers share: options, shutdown on signals, the accept loop and the
per-connection line loop (read a line, answer it, count bytes, log the close)."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

from lab.programs.wrap import (
    MAX_LINE,
    RECV_CHUNK,
    CallError,
    LineReader,
    LineTooLong,
    accept,
    errno_text,
    local_text,
    log,
    writen,
)

Peer = tuple[str, int]
Respond = Callable[[bytes], bytes]

# accept() errors that mean "out of a resource right now": the pending connection stays
# queued, so retrying at once would spin; pausing lets other connections close first.
_ACCEPT_BACKOFF = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_BACKOFF_SECONDS = 0.1

# After refusing an over-long line the server reads (and drops) what the client is still
# sending before closing, so the close is a FIN the client can read up to, not a reset
# that could destroy the ERROR line. Bounded so a client cannot hold a server forever.
# Draining stops at EOF, after DRAIN_IDLE_SECONDS without data, or at either bound.
DRAIN_SECONDS = 2.0
DRAIN_IDLE_SECONDS = 0.2
DRAIN_BYTES = 16 * 1024 * 1024
SHUTDOWN_CHECK_SECONDS = 1.0  # how often a server blocked in accept() looks for a lost signal


class Shutdown(BaseException):
    """Raised in the main thread by the SIGTERM/SIGINT handler (like KeyboardInterrupt),
    so a blocking accept() or recv() is left at once."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


# The shutdown signal, once one has arrived. Python drops an exception that a handler
# raises where it cannot propagate (inside a finalizer, say), so accept_loop also looks here.
_shutdown_signum: int | None = None


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    global _shutdown_signum
    _shutdown_signum = signum
    raise Shutdown(signum)


def install_shutdown_handlers() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_shutdown)


def ignore_shutdown_signals() -> None:
    """During cleanup a second SIGTERM/SIGINT must not interrupt it."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def peer_text(peer: Peer) -> str:
    return f"{peer[0]}:{peer[1]}"


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's own, told the terminal's width instead of asking shutil for it. argparse
    makes a formatter for every option added, and shutil would bring zlib, bz2 and lzma
    into every server: 30 more memory mappings, which each fork() of the fork server
    copies and each child's exit unmaps (about 5% of a fork, ``bench_fork``)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)  # as HelpFormatter's own default


def _columns() -> int:
    """The width shutil.get_terminal_size() would give: $COLUMNS, the terminal's, or 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    stdout = sys.__stdout__
    try:
        return os.get_terminal_size(stdout.fileno()).columns if stdout else 80
    except (ValueError, OSError):  # not a terminal, or closed
        return 80


def tcp_server_parser(prog: str, description: str, default_port: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=_HelpFormatter
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    parser.add_argument(
        "--port",
        type=port_number,
        default=default_port,
        help=f"port to bind (default {default_port}; 0 picks a free port, logged at start)",
    )
    parser.add_argument(
        "port_arg",
        nargs="?",
        type=port_number,
        metavar="PORT",
        help="the port as the course's C servers take it (./server PORT); same as --port",
    )
    parser.add_argument(
        "--backlog", type=positive_int, default=128, help="listen() backlog (default 128)"
    )
    parser.add_argument(
        "--reuseaddr",
        action="store_true",
        help="set SO_REUSEADDR before bind (off by default, so EADDRINUSE stays observable)",
    )
    return parser


def parse_server_args(
    parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> argparse.Namespace:
    """The arguments of a ``tcp_server_parser``; a ``PORT`` given alone stands for --port."""
    args = parser.parse_args(argv)
    if args.port_arg is not None:
        args.port = args.port_arg
    return args


def log_listening(proto: str, sock: socket.socket, backlog: int | None = None) -> None:
    tail = f" backlog={backlog}" if backlog is not None else ""
    log(f"listening {proto} {local_text(sock)} pid={os.getpid()}{tail}")


def accept_loop(listener: socket.socket, handle: Callable[[socket.socket, Peer], None]) -> int:
    """Accept connections and hand each to ``handle`` until SIGTERM/SIGINT; returns the
    signal number. An accept error is logged and the server carries on."""
    # A timeout on the listening socket only wakes accept() now and then, to see a
    # shutdown signal whose exception was lost; connections accepted stay blocking.
    listener.settimeout(SHUTDOWN_CHECK_SECONDS)
    try:
        while True:
            if _shutdown_signum is not None:
                raise Shutdown(_shutdown_signum)
            try:
                conn, peer = accept(listener)
            except CallError as err:
                if isinstance(err.cause, TimeoutError):
                    continue
                log(f"error {err.call}: {err.reason}")
                if err.cause.errno in _ACCEPT_BACKOFF:
                    time.sleep(ACCEPT_BACKOFF_SECONDS)
                continue
            handle(conn, peer)
    except Shutdown as stop:
        return stop.signum


def serve_tcp(
    listener: socket.socket,
    backlog: int,
    handle: Callable[[socket.socket, Peer], None],
    on_stop: Callable[[], None] | None = None,
) -> int:
    """The life of a TCP server after listen(): log ready, accept until a signal, then
    ``on_stop`` (e.g. stop children), close the listening socket, log, exit status 0."""
    install_shutdown_handlers()
    log_listening("tcp", listener, backlog)
    signum = accept_loop(listener, handle)
    ignore_shutdown_signals()
    if on_stop is not None:
        on_stop()
    listener.close()
    log(f"shutdown signal={signal.Signals(signum).name}")
    return 0


# The course's echo transformation: ASCII lower case to upper case, as toupper(). The
# method itself, not a function that calls it: a Python frame less for every line served.
upper_case: Respond = bytes.upper


def _refuse_long_line(conn: socket.socket, limit: int) -> int:
    """Send the ERROR line, half-close, drain what the client still sends; bytes sent."""
    sent = writen(conn, f"ERROR line longer than {limit} bytes; closing\n".encode())
    conn.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + DRAIN_SECONDS
    drained = 0
    while drained < DRAIN_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        conn.settimeout(min(left, DRAIN_IDLE_SECONDS))
        try:
            data = conn.recv(RECV_CHUNK)
        except (TimeoutError, OSError):
            break
        if not data:
            break
        drained += len(data)
    return sent


def serve_lines(
    conn: socket.socket, peer: Peer, who: str, respond: Respond, close_delay: float = 0.0
) -> None:
    """One connection: for each request line, write ``respond(line)``. Logs ``connect`` and
    ``close``; never raises for anything the client does. A ``Shutdown`` (main thread
    only) is logged as the close reason, then re-raised. ``close_delay``: seconds to wait
    after the client's EOF before closing, so that the kernel acknowledges the client's FIN
    on its own and the server's FIN follows later (four segments instead of three).

    The usual request arrives whole, one line per ``recv``, and is answered as it came; a
    ``LineReader`` is made only when one does not. In a forked child each object made or
    first touched can cost a page copied (``bench_child_pages``); among a thousand threads
    each bytecode between two system calls keeps the others waiting for the interpreter."""
    where = f"{peer_text(peer)} {who}"
    log(f"connect {where}")
    reader: LineReader | None = None
    bytes_in = bytes_out = 0
    reason = ""
    recv, send = conn.recv, conn.send  # looked up once, not per line
    try:
        try:
            while True:
                if reader is None:
                    line = recv(RECV_CHUNK)
                    if not line:
                        break  # EOF
                    bytes_in += len(line)
                    # Not one whole line (LineReader.readline's own test, inlined here):
                    if line.find(b"\n") != len(line) - 1 or len(line) > MAX_LINE:
                        reader = LineReader(conn, MAX_LINE, pending=line)
                        continue
                else:
                    line = reader.readline()
                    if not line:
                        break
                try:
                    reply = respond(line)
                except Exception as exc:  # a bug on one input must not end the process
                    reply = f"ERROR {type(exc).__name__}\n".encode()
                sent = send(reply)
                if sent < len(reply):  # send may take only part of it
                    writen(conn, reply[sent:])
                bytes_out += len(reply)
        except LineTooLong as exc:
            bytes_out += _refuse_long_line(conn, exc.limit)
            reason = " line-too-long"
        else:
            if close_delay > 0:  # the client's EOF
                time.sleep(close_delay)
                reason = f" close-delay={close_delay:g}"
    except (ConnectionResetError, BrokenPipeError):
        reason = " reset"
    except OSError as exc:
        reason = f" error={errno_text(exc).split(' ')[0]}"
    except Shutdown:
        reason = " shutdown"
        raise
    finally:
        conn.close()
        if reader is not None:
            bytes_in += reader.received
        log(f"close {where} bytes_in={bytes_in} bytes_out={bytes_out}{reason}")
