"""A line client in the spirit of the course's ``str_cli``.

Each connection sends its lines one at a time and reads one reply line per line sent
(waiting at most ``--timeout`` seconds per reply). A recv of 0 bytes before every reply has
arrived is reported as ``server closed the connection early``. Then, with ``--hold S``, the
connection stays open S seconds (to look at ESTABLISHED sockets, zombies, threads), and is
closed; with ``--half-close`` it first sends FIN with shutdown(SHUT_WR) and reads whatever
the server still sends until EOF.

``--repeat N`` sends the lines N times over (expecting N times the replies). ``--rcvbuf B``
sets SO_RCVBUF before connecting (a small one also makes the advertised window small).
``--pause-reading S`` sends every line from a second thread while the connection reads
nothing for S seconds, then reads every reply: the receive buffer fills, the window the
client advertises falls to zero and the server's sends stall until reading resumes.

``--count N --concurrency C`` opens N connections, C at a time, each in its own thread.
``--json`` prints one JSON object at the end instead of the replies. Exit status 0 iff every
connection got a reply per line without error.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Iterable

from lab.programs.clientkit import (
    Outcome,
    Printer,
    add_common_options,
    input_lines,
    report,
    run_many,
)
from lab.programs.common import port_number, positive_int
from lab.programs.hold import hold
from lab.programs.wrap import (
    MAX_LINE,
    CallError,
    LineReader,
    LineTooLong,
    address_text,
    connect,
    errno_text,
    local_text,
    set_reuseaddr,
    socket_tcp,
    writen,
)

CLOSED_EARLY = "server closed the connection early"

# Types for the checker only. typing, dataclasses and concurrent.futures (which brings in
# logging) were half of a client's start-up, and a run starts its clients all at once.
TYPE_CHECKING = False
if TYPE_CHECKING:
    pass


def decode_line(data: bytes) -> str:
    return data.rstrip(b"\r\n").decode("utf-8", "replace")


class Options:
    """How every connection of the run behaves, from the command line."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        hold: float,
        half_close: bool,
        reuseaddr: bool,
        rcvbuf: int = 0,
        pause_reading: float = 0.0,
        release: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.hold = hold
        self.half_close = half_close
        self.reuseaddr = reuseaddr
        self.rcvbuf = rcvbuf
        self.pause_reading = pause_reading
        self.release = release

    @property
    def server(self) -> str:
        return address_text(self.host, self.port)


def _recv_error(opts: Options, call: str, exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return f"{call} {opts.server}: ETIMEDOUT (no reply within {opts.timeout:g} s)"
    return f"{call} {opts.server}: {errno_text(exc)}"


def run_connection(index: int, opts: Options, lines: Iterable[str], say: Printer) -> Outcome:
    out = Outcome(index)
    try:
        sock = socket_tcp()
    except CallError as err:
        out.error = err.line
        return out
    with sock:
        if opts.reuseaddr:
            set_reuseaddr(sock)
        if opts.rcvbuf:
            # Before connect(): the window scale offered in the SYN follows the buffer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf)
        sock.settimeout(opts.timeout)  # bounds connect() and every wait for a reply
        try:
            connect(sock, opts.host, opts.port)
        except CallError as err:
            out.error = err.line
            say(index, err.line, sys.stderr)
            return out
        out.local = local_text(sock)
        reader = LineReader(sock, max_line=MAX_LINE)
        exchange = _exchange_paused if opts.pause_reading > 0 else _exchange
        exchange(sock, reader, out, opts, lines, say)
        if out.error is None and not out.closed_early:
            _finish(sock, reader, out, opts, say)
    return out


def _exchange(
    sock: socket.socket,
    reader: LineReader,
    out: Outcome,
    opts: Options,
    lines: Iterable[str],
    say: Printer,
) -> None:
    """Send each line and read its reply, in lock step."""
    for text in lines:
        out.sent.append(text)
        try:
            writen(sock, (text + "\n").encode("utf-8"))
        except OSError as exc:
            out.error = _recv_error(opts, "send", exc)
            break
        if not _read_reply(reader, out, opts, say):
            break
    if out.error is not None:
        say(out.index, out.error, sys.stderr)


def _read_reply(reader: LineReader, out: Outcome, opts: Options, say: Printer) -> bool:
    """Read one reply line into ``out``; False (with the reason in ``out``) if none came."""
    try:
        reply = reader.readline()
    except LineTooLong as exc:
        out.error = f"recv {opts.server}: reply {exc}"
        return False
    except OSError as exc:
        out.error = _recv_error(opts, "recv", exc)
        return False
    if not reply:  # 0 bytes: the server closed before answering
        out.closed_early = True
        say(out.index, CLOSED_EARLY)
        return False
    out.replies.append(decode_line(reply))
    say(out.index, out.replies[-1])
    return True


def _exchange_paused(
    sock: socket.socket,
    reader: LineReader,
    out: Outcome,
    opts: Options,
    lines: Iterable[str],
    say: Printer,
) -> None:
    """Send every line from a sender thread while reading nothing for ``pause_reading``
    seconds, then read one reply per line. The sender may block meanwhile (the server,
    unable to write its replies, stops reading too); reading lets both sides go on."""
    todo = list(lines)
    out.sent.extend(todo)
    send_error: list[str] = []

    def send_all() -> None:
        try:
            for text in todo:
                writen(sock, (text + "\n").encode("utf-8"))
        except OSError as exc:
            send_error.append(_recv_error(opts, "send", exc))

    sender = threading.Thread(target=send_all, name=f"sender-{out.index}", daemon=True)
    sender.start()
    time.sleep(opts.pause_reading)
    for _ in todo:
        if not _read_reply(reader, out, opts, say):
            break
    # Every reply read means every line was sent; otherwise the send has failed or the
    # socket's timeout ends it.
    sender.join()
    if out.error is None and send_error:
        out.error = send_error[0]
    if out.error is not None:
        say(out.index, out.error, sys.stderr)


def _finish(
    sock: socket.socket, reader: LineReader, out: Outcome, opts: Options, say: Printer
) -> None:
    """Hold the connection open if asked, then half-close and read until EOF if asked."""
    if opts.hold > 0:
        hold(opts.hold, opts.release)
    if not opts.half_close:
        return
    try:
        sock.shutdown(socket.SHUT_WR)
        while line := reader.readline():
            out.replies.append(decode_line(line))
            say(out.index, out.replies[-1])
    except (OSError, LineTooLong) as exc:
        out.error = _recv_error(opts, "recv", exc) if isinstance(exc, OSError) else f"recv: {exc}"
        say(out.index, out.error, sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m lab.programs.client",
        description="Line client: sends lines, prints one reply line per line sent.",
    )
    add_common_options(parser, timeout=10.0)
    parser.add_argument("--port", type=port_number, default=9999, help="server port (9999)")
    parser.add_argument(
        "--concurrency", type=positive_int, help="connections open at once (default: --count)"
    )
    parser.add_argument(
        "--hold", type=float, default=0.0, help="seconds to keep each connection open after"
    )
    parser.add_argument(
        "--release",
        metavar="FILE",
        help="after --hold, keep each connection open until FILE exists (at most 60 s more)",
    )
    parser.add_argument(
        "--half-close",
        action="store_true",
        help="shutdown(SHUT_WR) before closing, then read until the server closes",
    )
    parser.add_argument("--reuseaddr", action="store_true", help="set SO_REUSEADDR (off)")
    parser.add_argument(
        "--repeat", type=positive_int, default=1, help="send the lines this many times (1)"
    )
    parser.add_argument(
        "--rcvbuf", type=positive_int, default=0, help="SO_RCVBUF in bytes (kernel default)"
    )
    parser.add_argument(
        "--pause-reading",
        type=float,
        default=0.0,
        metavar="S",
        help="send all lines from another thread, read no reply for S seconds, then read",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    opts = Options(
        args.host,
        args.port,
        args.timeout,
        args.hold,
        args.half_close,
        args.reuseaddr,
        args.rcvbuf,
        args.pause_reading,
        args.release,
    )
    lines = input_lines(args.send, args.count)
    if args.repeat > 1:
        lines = list(lines) * args.repeat
    say = Printer(enabled=not args.json, prefixed=args.count > 1)
    outcomes = run_many(
        args.count,
        args.concurrency or args.count,
        lambda index: run_connection(index, opts, lines, say),
    )
    return report("client", opts.server, outcomes, args.json)


if __name__ == "__main__":
    sys.exit(main())
