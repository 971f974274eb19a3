"""The look for held connections before the "during" snapshot (lab.run.clients)."""

from __future__ import annotations

from lab.run.clients import accepted_in

# `ss -Htan` on a server's node: a fork server on 9999 with two connections accepted and
# one still in its accept queue, a thread server on 8000 (IPv6 listener) with one.
TABLE = """\
LISTEN 1      16     10.77.1.10:9999  0.0.0.0:*
LISTEN 0      128    *:8000           *:*
ESTAB  0      0      10.77.1.10:9999  10.77.1.11:40000
ESTAB  0      0      10.77.1.10:9999  10.77.1.11:40002
ESTAB  0      0      10.77.1.10:9999  10.77.1.12:40004
ESTAB  0      0      [::ffff:10.77.1.10]:8000 [::ffff:10.77.1.11]:40010
ESTAB  0      0      10.77.1.10:40020 10.77.1.12:8000
TIME-WAIT 0   0      10.77.1.10:8000  10.77.1.12:39000
"""


def test_a_connection_still_in_the_accept_queue_is_not_yet_held() -> None:
    assert not accepted_in(TABLE, 9999, 3)
    assert not accepted_in(TABLE.replace("LISTEN 1 ", "LISTEN 0 "), 9999, 4)
    assert accepted_in(TABLE.replace("LISTEN 1 ", "LISTEN 0 "), 9999, 3)


def test_only_the_local_port_counts_and_only_established() -> None:
    """A client socket whose peer is port 8000, and a TIME-WAIT, are not the server's."""
    assert accepted_in(TABLE, 8000, 1)
    assert not accepted_in(TABLE, 8000, 2)
    assert not accepted_in("", 8000, 1)
    assert accepted_in("", 8000, 0)
