"""The claims of the impaired-link experiments pass on evidence that shows what they
state and fail on evidence that contradicts it."""

from __future__ import annotations

from pathlib import Path

from lab.evidence.analysis.tcp import TcpConnection, tcp_connections
from lab.spec.topology import load_topology
from lab.verdict.impaired import (
    expected_rtt,
    flight_per_round,
    retransmission_problem,
    rtt_problem,
    slow_start_problem,
)
from tests.netem.test_retransmission_kinds import ACK, CISN, SISN, SYN, C, S, Wire

EXPERIMENTS = Path(__file__).resolve().parents[2] / "topologies" / "experiments"


def conn_of(w: Wire) -> TcpConnection:
    (conn,) = tcp_connections(w.packets)
    return conn


def resent(gaps: list[float]) -> Wire:
    """One segment sent, then sent again after each gap, then acknowledged."""
    w = Wire()
    w.handshake()
    t = 0.1
    w.data(t, 1)
    for gap in gaps:
        t += gap
        w.data(t, 1)
    w.ack(t + 0.01, 101)
    return w


def test_retransmission_holds_when_the_timer_doubles() -> None:
    assert retransmission_problem(conn_of(resent([0.2, 0.4, 0.8]))) is None


def test_retransmission_holds_after_a_tail_loss_probe() -> None:
    # As Linux does it: a probe after ~200 ms, one RTO after that, then the backoff.
    assert retransmission_problem(conn_of(resent([0.205, 0.208, 0.436]))) is None


def test_retransmission_fails_when_the_timer_does_not_double() -> None:
    problem = retransmission_problem(conn_of(resent([0.2, 0.2, 0.2])))
    assert problem is not None and "did not double" in problem


def test_retransmission_fails_when_the_timeout_after_the_probe_shrinks() -> None:
    problem = retransmission_problem(conn_of(resent([0.4, 0.2])))
    assert problem is not None and "shrank" in problem


def test_retransmission_fails_without_any() -> None:
    problem = retransmission_problem(conn_of(resent([])))
    assert problem is not None and "none of its data twice" in problem


def delayed(rtt: float, ack_after: float) -> Wire:
    w = Wire()
    w.send(0.0, C, SYN, CISN, 0)
    w.send(rtt, S, SYN | ACK, SISN, CISN + 1)
    w.send(rtt + 0.0001, C, ACK, CISN + 1, SISN + 1)
    w.data(rtt + 0.001, 1)
    w.ack(rtt + 0.001 + ack_after, 101)
    return w


def test_one_round_trip_holds_on_a_delayed_link() -> None:
    assert rtt_problem(conn_of(delayed(0.08, 0.081)), 0.08) is None


def test_one_round_trip_fails_on_a_link_without_delay() -> None:
    problem = rtt_problem(conn_of(delayed(0.0002, 0.0002)), 0.08)
    assert problem is not None and "not one round trip (80 ms)" in problem


def test_one_round_trip_fails_without_a_delay_to_show() -> None:
    problem = rtt_problem(conn_of(delayed(0.0002, 0.0002)), 0.0)
    assert problem is not None and "adds no delay" in problem


def test_one_round_trip_fails_when_data_is_acknowledged_too_soon() -> None:
    problem = rtt_problem(conn_of(delayed(0.08, 0.001)), 0.08)
    assert problem is not None and "less than a round trip" in problem


def test_the_round_trip_is_read_from_the_topology() -> None:
    topo = load_topology(EXPERIMENTS / "rtt.yaml")
    assert expected_rtt(topo, "client", "server") == 0.08
    topo = load_topology(EXPERIMENTS / "retransmission.yaml")
    assert expected_rtt(topo, "client", "server") == 0.0


def rounds_wire(per_round: list[int], rtt: float = 0.08) -> Wire:
    """The client sends ``per_round[k]`` segments of 100 bytes in round trip k, each round
    acknowledged in full one round trip later."""
    w = Wire()
    w.send(0.0, C, SYN, CISN, 0)
    w.send(rtt, S, SYN | ACK, SISN, CISN + 1)
    w.send(rtt + 0.0001, C, ACK, CISN + 1, SISN + 1)
    t, rel = rtt + 0.001, 1
    for n in per_round:
        for k in range(n):
            w.data(t + k * 0.0001, rel)
            rel += 100
        w.ack(t + rtt * 0.9, rel)
        t += rtt
    return w


def test_slow_start_holds_when_the_flight_doubles() -> None:
    conn = conn_of(rounds_wire([10, 20, 40, 80, 80, 80]))
    assert flight_per_round(conn) == [1000, 2000, 4000, 8000, 8000, 8000]
    assert slow_start_problem(conn) is None


def test_slow_start_fails_on_a_flat_flight() -> None:
    problem = slow_start_problem(conn_of(rounds_wire([10, 10, 10, 10, 10])))
    assert problem is not None and "round 2 is not 1.5 times round 1" in problem


def test_slow_start_fails_on_too_short_a_transfer() -> None:
    problem = slow_start_problem(conn_of(rounds_wire([10, 20])))
    assert problem is not None and "too few" in problem
