"""The bare Python thread-per-connection server the benchmark compares with: accept, start
a thread, recv, upper-case, send; nothing else. With ``--log``, each thread also writes a
connect and a close line on stderr, as the lab's servers do, so that the benchmark can
tell the cost of that evidence from the rest.
python3 -m tests.benchmarks.bare_thread_server PORT [--log]"""

import os
import socket
import sys
import threading


def serve(conn: socket.socket, peer: tuple[str, int]) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data.upper())


def serve_logged(conn: socket.socket, peer: tuple[str, int]) -> None:
    name = threading.current_thread().name
    os.write(2, f"connect {peer[0]}:{peer[1]} thread={name}\n".encode())
    serve(conn, peer)
    os.write(2, f"close {peer[0]}:{peer[1]} thread={name}\n".encode())


target = serve_logged if "--log" in sys.argv[2:] else serve
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
print(f"listening tcp 127.0.0.1:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
while True:
    conn, peer = listener.accept()
    threading.Thread(target=target, args=(conn, peer), daemon=True).start()
