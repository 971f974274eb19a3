"""A server that answers one line and closes: the server of the spot-the-bug experiment
bug-client-read, which closes first so that what a client does next can be seen.

    python3 one_line_server.py PORT

For each connection, one at a time: read one line, send it back upper-cased, and close
the sending half at once (its FIN goes out before anything the client sends next); then
read and drop what the client still sends, until its close or for at most 2 s, and close.
Closing with unread bytes would send a RST instead, and whether the client's next line
arrives before the close is a matter of timing. Logs like the lab's servers (stderr);
stops on SIGTERM. Standard library only.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
from types import FrameType

DRAIN_SECONDS = 2.0


def stop(signum: int, frame: FrameType | None) -> None:
    print(f"shutdown signal={signal.Signals(signum).name}", file=sys.stderr, flush=True)
    sys.exit(0)


def main() -> int:
    port = int(sys.argv[1])
    signal.signal(signal.SIGTERM, stop)
    with socket.create_server(("0.0.0.0", port), backlog=16, reuse_port=False) as listener:
        print(f"listening tcp 0.0.0.0:{port} backlog=16", file=sys.stderr, flush=True)
        while True:
            conn, peer = listener.accept()
            with conn, conn.makefile("rb") as reader:
                line = reader.readline(65536)
                conn.sendall(line.upper())
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(DRAIN_SECONDS)
                with contextlib.suppress(OSError):
                    while conn.recv(4096):
                        pass
                print(f"close {peer[0]}:{peer[1]} after one line", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
