"""A server that answers one line and closes: the server of the spot-the-bug experiment
bug-client-read, which closes first so that what a client does next can be seen.

    python3 one_line_server.py PORT

For each connection, one at a time: read one line, send it back upper-cased, close. Logs
like the lab's servers (stderr); stops on SIGTERM. Standard library only.
"""

from __future__ import annotations

import signal
import socket
import sys
from types import FrameType


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
                print(f"close {peer[0]}:{peer[1]} after one line", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
