"""The course's socket programs, standard library only: each runs on any Linux host with
python3 >= 3.11 as ``python3 -m lab.programs.<name>``.

- ``wrap``: error-wrapped socket calls, ``readn``/``writen``/``LineReader``.
- ``fork_server`` (9999), ``thread_server`` (8000), ``iterative_server`` (9877): upper-casing
  echo servers; ``dict_server`` (8080/tcp): English->Chinese dictionary;
  ``udp_echo`` (8080/udp): datagram echo server and client; ``client``: a line client.
- ``loadgen``: many line clients at once (persistent or per-request), messages/s,
  connections/s, p50/p99 latency and errors by kind.

Servers log one line per event on stderr (``listening``, ``connect``, ``close``,
``reaped``, ``datagram``, ``shutdown``, ``error``) and exit 0 on SIGTERM/SIGINT.
A request line may hold at most ``wrap.MAX_LINE`` (65536) bytes before its newline.
"""
