"""The analysis tells originals, timeout and fast retransmissions and spurious ones apart,
from hand-made segments whose history says which each is."""

from __future__ import annotations

from lab.evidence.analysis.packet import Packet, TcpOptions
from lab.evidence.analysis.tcp import tcp_connections

SYN, FIN, ACK = 0x02, 0x01, 0x10
C, S = ("10.0.0.1", 40000), ("10.0.0.2", 80)
CISN, SISN = 1000, 5000


class Wire:
    def __init__(self) -> None:
        self.packets: list[Packet] = []

    def send(
        self,
        t: float,
        frm: tuple[str, int],
        flags: int,
        seq: int,
        ack: int,
        n: int = 0,
        options: TcpOptions | None = None,
    ) -> None:
        to = S if frm == C else C
        self.packets.append(
            Packet(
                index=len(self.packets) + 1,
                time=t,
                captured_len=54 + n,
                wire_len=54 + n,
                src_mac=None,
                dst_mac=None,
                direction=None,
                interface_index=None,
                ip_version=4,
                src_ip=frm[0],
                dst_ip=to[0],
                ttl=64,
                ip_id=0,
                protocol="tcp",
                src_port=frm[1],
                dst_port=to[1],
                tcp_flags=flags,
                seq=seq,
                ack=ack,
                window=1000,
                payload_len=n,
                options=options,
            )
        )

    def handshake(self) -> None:
        self.send(0.0, C, SYN, CISN, 0)
        self.send(0.01, S, SYN | ACK, SISN, CISN + 1)
        self.send(0.02, C, ACK, CISN + 1, SISN + 1)

    def data(self, t: float, rel: int, n: int = 100) -> None:
        self.send(t, C, ACK, CISN + rel, SISN + 1, n)

    def ack(self, t: float, rel: int) -> None:
        self.send(t, S, ACK, SISN + 1, CISN + rel)


def kinds(w: Wire) -> list[tuple[int, str, int]]:
    (conn,) = tcp_connections(w.packets)
    return [(r.relative_seq, r.kind, r.attempt) for r in conn.retransmissions]


def test_timeout_retransmissions_count_attempts_and_time_the_gaps() -> None:
    w = Wire()
    w.handshake()
    w.data(0.1, 1)
    w.data(0.3, 1)
    w.data(0.7, 1)
    w.ack(0.71, 101)
    (conn,) = tcp_connections(w.packets)
    assert kinds(w) == [(1, "timeout", 2), (1, "timeout", 3)]
    assert [r.since_previous for r in conn.retransmissions] == [0.2, 0.4]
    assert conn.originals == 3  # the SYN, the SYN-ACK and the first send of the data


def test_three_duplicate_acks_make_a_fast_retransmission() -> None:
    w = Wire()
    w.handshake()
    for k in range(4):
        w.data(0.1 + k * 0.001, 1 + 100 * k)
    for k in range(3):
        w.ack(0.12 + k * 0.001, 1)  # the first segment was lost: the same ACK, thrice more
    w.data(0.13, 1)
    assert kinds(w) == [(1, "fast", 2)]


def test_two_duplicate_acks_are_not_enough() -> None:
    w = Wire()
    w.handshake()
    for k in range(3):
        w.data(0.1 + k * 0.001, 1 + 100 * k)
    w.ack(0.12, 1)
    w.ack(0.121, 1)
    w.data(0.13, 1)
    assert kinds(w) == [(1, "timeout", 2)]


def test_data_already_acknowledged_sent_again_is_spurious() -> None:
    w = Wire()
    w.handshake()
    w.data(0.1, 1)
    w.ack(0.15, 101)
    w.data(0.3, 1)
    assert kinds(w) == [(1, "spurious", 2)]


def test_a_fin_resent_after_its_ack_is_not_spurious() -> None:
    # As tshark: a segment without data is never spurious. The client acknowledged the
    # server's FIN, the ACK was lost on the way, and the server sent its FIN again.
    w = Wire()
    w.handshake()
    w.send(0.1, C, FIN | ACK, CISN + 1, SISN + 1)
    w.send(0.11, S, FIN | ACK, SISN + 1, CISN + 2)
    w.send(0.12, C, ACK, CISN + 2, SISN + 2)
    w.send(0.4, S, FIN | ACK, SISN + 1, CISN + 2)
    assert kinds(w) == [(1, "timeout", 2)]
