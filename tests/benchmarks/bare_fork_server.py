"""The bare Python fork-per-connection server the benchmark compares with: accept, fork,
recv, upper-case, send; nothing else (no limits, SIGCHLD ignored so the kernel reaps).
With ``--log``, each child also writes a connect and a close line on stderr, as the lab's
servers do, so that the benchmark can tell the cost of that evidence from the rest.
With ``--reap`` (which implies ``--log``), the server reaps its children as the course's
fork server must: a SIGCHLD handler, a ``waitpid(-1, WNOHANG)`` loop, a line per child.
python3 -m tests.benchmarks.bare_fork_server PORT [--log] [--reap]"""

import os
import signal
import socket
import sys
from types import FrameType


def reap(signum: int, frame: FrameType | None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        os.write(2, f"reaped pid={pid} status={os.waitstatus_to_exitcode(status)}\n".encode())


reaping = "--reap" in sys.argv[2:]
logging = reaping or "--log" in sys.argv[2:]
signal.signal(signal.SIGCHLD, reap if reaping else signal.SIG_IGN)
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
print(f"listening tcp 127.0.0.1:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
while True:
    conn, peer = listener.accept()
    if os.fork() == 0:
        listener.close()
        if logging:
            os.write(2, f"connect {peer[0]}:{peer[1]} pid={os.getpid()}\n".encode())
        while data := conn.recv(65536):
            conn.sendall(data.upper())
        if logging:
            os.write(2, f"close {peer[0]}:{peer[1]} pid={os.getpid()}\n".encode())
        os._exit(0)
    conn.close()
