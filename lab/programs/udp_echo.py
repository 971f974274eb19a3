"""UDP echo (default port 8080): ``server`` and ``client`` subcommands.

The server binds, then loops on recvfrom/sendto: each datagram goes back unchanged to the
address it came from (boundaries kept: one datagram in, one out). No connection, so no
accept and no per-client state. The client binds nothing: the kernel picks its port at the
first sendto. It prints each reply with the address it came from.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterable

from lab.programs.clientkit import (
    Outcome,
    Printer,
    add_common_options,
    input_lines,
    report,
    run_many,
)
from lab.programs.common import (
    Shutdown,
    ignore_shutdown_signals,
    install_shutdown_handlers,
    log_listening,
    peer_text,
    port_number,
)
from lab.programs.wrap import (
    CallError,
    address_text,
    die,
    errno_text,
    local_text,
    log,
    socket_udp,
)
from lab.programs.wrap import bind as bind_socket

DEFAULT_PORT = 8080
# The largest UDP payload over IPv4; a smaller buffer would silently truncate datagrams.
MAX_DATAGRAM = 65507


def serve(host: str, port: int) -> int:
    try:
        sock = socket_udp()
        bind_socket(sock, host, port)
    except CallError as err:
        die(err)
    install_shutdown_handlers()
    log_listening("udp", sock)
    try:
        while True:
            try:
                data, peer = sock.recvfrom(MAX_DATAGRAM)
            except OSError as exc:
                log(f"error recvfrom: {errno_text(exc)}")
                continue
            log(f"datagram {peer_text(peer)} bytes={len(data)}")
            try:
                sock.sendto(data, peer)
            except OSError as exc:
                log(f"error sendto {peer_text(peer)}: {errno_text(exc)}")
    except Shutdown as stop:
        ignore_shutdown_signals()
        sock.close()
        log(f"shutdown signal={signal.Signals(stop.signum).name}")
    return 0


def client_socket(
    index: int, host: str, port: int, timeout: float, lines: Iterable[str], say: Printer
) -> Outcome:
    """One client socket: sendto each text, recvfrom its echo."""
    out = Outcome(index)
    server = address_text(host, port)
    try:
        sock = socket_udp()
    except CallError as err:
        out.error = err.line
        return out
    with sock:
        sock.settimeout(timeout)
        for text in lines:
            out.sent.append(text)
            try:
                sock.sendto(text.encode("utf-8"), (host, port))
            except OSError as exc:
                out.error = f"sendto {server}: {errno_text(exc)}"
                break
            out.local = local_text(sock)  # known only now: the first sendto bound it
            try:
                data, peer = sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                out.error = f"recvfrom {server}: ETIMEDOUT (no reply within {timeout:g} s)"
                break
            except OSError as exc:
                out.error = f"recvfrom {server}: {errno_text(exc)}"
                break
            out.replies.append(data.decode("utf-8", "replace"))
            say(index, f"{out.replies[-1]}  (from {peer_text(peer)})")
    if out.error is not None:
        say(index, out.error, sys.stderr)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m lab.programs.udp_echo",
        description="UDP echo server and client. A PORT given alone starts the server on it.",
    )
    sub = parser.add_subparsers(dest="role", required=True)
    srv = sub.add_parser("server", help="echo every datagram back to its sender")
    srv.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    srv.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port to bind (default {DEFAULT_PORT}; 0 picks a free port, logged at start)",
    )
    cli = sub.add_parser("client", help="send datagrams, print the echoes")
    add_common_options(cli, timeout=5.0)
    cli.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"server port ({DEFAULT_PORT})"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].isdigit():
        # The course's form, as ./udp_echo_server PORT: the server on that port.
        argv = ["server", "--port", argv[0]]
    args = build_parser().parse_args(argv)
    if args.role == "server":
        return serve(args.host, args.port)
    lines = input_lines(args.send, args.count)
    say = Printer(enabled=not args.json, prefixed=args.count > 1)
    outcomes = run_many(
        args.count,
        args.count,
        lambda i: client_socket(i, args.host, args.port, args.timeout, lines, say),
    )
    server = address_text(args.host, args.port)
    return report("udp_echo", server, outcomes, args.json)


if __name__ == "__main__":
    sys.exit(main())
