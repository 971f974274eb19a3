"""readn / writen / LineReader, the servers' line loop and the wrapped calls, against real
loopback TCP peers."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from lab.programs.common import serve_lines, upper_case
from lab.programs.wrap import (
    MAX_LINE,
    Bind,
    CallError,
    LineReader,
    LineTooLong,
    bind,
    connect,
    readn,
    writen,
)

HOST = "127.0.0.1"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(ours, peer): a connected TCP pair over loopback."""
    with socket.create_server((HOST, 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ours.settimeout(10)
    yield ours, peer
    ours.close()
    peer.close()


def in_thread(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def send_byte_by_byte(sock: socket.socket, data: bytes) -> None:
    for i in range(len(data)):
        sock.sendall(data[i : i + 1])


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_readline_assembles_lines_sent_byte_by_byte(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    sender = in_thread(send_byte_by_byte, peer, b"hello\nworld, again\n")
    reader = LineReader(ours)
    assert reader.readline() == b"hello\n"
    assert reader.readline() == b"world, again\n"
    sender.join()
    assert reader.received == len(b"hello\nworld, again\n")


def test_readline_splits_several_lines_from_one_segment(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    peer.sendall(b"one\ntwo\n\nthree\n")
    reader = LineReader(ours)
    assert [reader.readline() for _ in range(4)] == [b"one\n", b"two\n", b"\n", b"three\n"]
    assert reader.buffered == 0


def test_readline_returns_the_unterminated_rest_then_eof(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = pair
    peer.sendall(b"whole\nhal")
    peer.close()
    reader = LineReader(ours)
    assert reader.readline() == b"whole\n"
    assert reader.readline() == b"hal"
    assert reader.readline() == b""
    assert reader.readline() == b""


def test_readline_raises_on_reset(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    peer.sendall(b"no newline yet")
    reset(peer)
    with pytest.raises(ConnectionResetError):
        LineReader(ours).readline()


def test_readline_limit(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    longest = b"x" * MAX_LINE + b"\n"
    sender = in_thread(peer.sendall, longest + b"y" * (MAX_LINE + 1))
    reader = LineReader(ours)
    assert reader.readline() == longest
    with pytest.raises(LineTooLong):
        reader.readline()
    sender.join()


def test_serve_lines_answers_lines_however_they_are_cut(
    pair: tuple[socket.socket, socket.socket], capfd: pytest.CaptureFixture[str]
) -> None:
    """A whole line per segment (answered as it came), then lines split over segments and
    several in one (through a LineReader from there on), then an unterminated rest: every
    line answered in order, and the close line counts every byte either way."""
    ours, peer = pair
    pieces = [b"one\n", b"tw", b"o\nthree\n\nfo", b"ur\n", b"rest"]
    server = in_thread(serve_lines, ours, ("192.0.2.1", 4000), "pid=1", upper_case)
    for piece in pieces:
        peer.sendall(piece)
        time.sleep(0.02)  # each its own segment, read by its own recv
    peer.shutdown(socket.SHUT_WR)
    peer.settimeout(10)
    replies = peer.makefile("rb").read()
    server.join(10)
    assert replies == b"ONE\nTWO\nTHREE\n\nFOUR\nREST"
    log_lines = capfd.readouterr().err.splitlines()
    assert log_lines == [
        "connect 192.0.2.1:4000 pid=1",
        f"close 192.0.2.1:4000 pid=1 bytes_in={len(b''.join(pieces))} bytes_out={len(replies)}",
    ]


def test_serve_lines_refuses_a_line_over_the_limit_after_whole_ones(
    pair: tuple[socket.socket, socket.socket], capfd: pytest.CaptureFixture[str]
) -> None:
    ours, peer = pair
    server = in_thread(serve_lines, ours, ("192.0.2.1", 4000), "pid=1", upper_case)
    peer.sendall(b"short\n")
    peer.settimeout(10)
    stream = peer.makefile("rb")
    assert stream.readline() == b"SHORT\n"
    sender = in_thread(peer.sendall, b"y" * (MAX_LINE + 1))
    assert stream.readline() == f"ERROR line longer than {MAX_LINE} bytes; closing\n".encode()
    sender.join(10)
    peer.shutdown(socket.SHUT_WR)
    assert stream.read() == b""
    server.join(10)
    assert capfd.readouterr().err.splitlines()[-1].endswith(" line-too-long")


def test_readn_reads_exactly_n_across_pieces(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    sender = in_thread(send_byte_by_byte, peer, b"0123456789abc")
    assert readn(ours, 10) == b"0123456789"
    assert readn(ours, 3) == b"abc"
    sender.join()


def test_readn_returns_fewer_only_at_eof(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    peer.sendall(b"abc")
    peer.close()
    assert readn(ours, 10) == b"abc"
    assert readn(ours, 10) == b""


def test_readn_raises_on_reset(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    peer.sendall(b"ab")
    reset(peer)
    with pytest.raises(ConnectionResetError):
        readn(ours, 10)


def test_writen_delivers_everything(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    data = bytes(range(256)) * 16384  # 4 MiB: far more than one send() takes
    received: list[bytes] = []
    peer.settimeout(10)
    reader = in_thread(lambda: received.append(readn(peer, len(data))))
    assert writen(ours, data) == len(data)
    reader.join()
    assert received == [data]


def test_writen_to_a_reset_peer_raises(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    reset(peer)
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        writen(ours, b"z" * (8 * 1024 * 1024))


def test_call_error_line_names_call_address_and_errno() -> None:
    with socket.create_server((HOST, 0)) as busy:
        port = busy.getsockname()[1]
        with socket.socket() as sock, pytest.raises(CallError) as info:
            bind(sock, HOST, port)
    assert info.value.line == f"bind {HOST}:{port}: EADDRINUSE (Address already in use)"


def test_connect_refused_line() -> None:
    with socket.create_server((HOST, 0)) as closed:
        port = closed.getsockname()[1]
    with socket.socket() as sock, pytest.raises(CallError) as info:
        connect(sock, HOST, port)
    assert info.value.line == f"connect {HOST}:{port}: ECONNREFUSED (Connection refused)"


def test_capitalised_bind_reports_and_exits_1(capfd: pytest.CaptureFixture[str]) -> None:
    with socket.create_server((HOST, 0)) as busy:
        port = busy.getsockname()[1]
        with socket.socket() as sock, pytest.raises(SystemExit) as info:
            Bind(sock, HOST, port)
    assert info.value.code == 1
    assert capfd.readouterr().err == f"bind {HOST}:{port}: EADDRINUSE (Address already in use)\n"
