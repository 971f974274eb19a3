"""The bare Python thread-per-connection server the benchmark compares with: accept, start
a thread, recv, upper-case, send; nothing else.
python3 -m tests.benchmarks.bare_thread_server PORT"""

import socket
import sys
import threading


def serve(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data.upper())


listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
print(f"listening tcp 127.0.0.1:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
