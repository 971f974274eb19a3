"""The bare Python fork-per-connection server the benchmark compares with: accept, fork,
recv, upper-case, send; nothing else (no logging, no limits, SIGCHLD ignored so the
kernel reaps).  python3 -m tests.benchmarks.bare_fork_server PORT"""

import os
import signal
import socket
import sys

signal.signal(signal.SIGCHLD, signal.SIG_IGN)
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
print(f"listening tcp 127.0.0.1:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
while True:
    conn, _ = listener.accept()
    if os.fork() == 0:
        listener.close()
        while data := conn.recv(65536):
            conn.sendall(data.upper())
        os._exit(0)
    conn.close()
