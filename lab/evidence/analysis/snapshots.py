"""Parsers for the snapshot commands and questions over their rows.

The snapshots are the outputs of ``netstat -tanup``, ``ss -tanpi`` and
``ps -e -o pid=,ppid=,stat=,nlwp=,args=``. Socket states are reported in netstat's
spelling (ESTABLISHED, TIME_WAIT, CLOSE_WAIT, FIN_WAIT2, ...) whichever tool produced them,
so rows of both tools compare directly; UDP sockets without a state get "UNCONN".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lab.evidence.analysis.common import Endpoint, ToDict

# ss spelling -> netstat spelling.
_SS_STATES = {
    "ESTAB": "ESTABLISHED",
    "SYN-SENT": "SYN_SENT",
    "SYN-RECV": "SYN_RECV",
    "FIN-WAIT-1": "FIN_WAIT1",
    "FIN-WAIT-2": "FIN_WAIT2",
    "TIME-WAIT": "TIME_WAIT",
    "CLOSE-WAIT": "CLOSE_WAIT",
    "LAST-ACK": "LAST_ACK",
    "LISTEN": "LISTEN",
    "CLOSING": "CLOSING",
    "CLOSED": "CLOSE",
    "UNCONN": "UNCONN",
}
TCP_STATES = frozenset(v for v in _SS_STATES.values() if v != "UNCONN")

_SS_USER = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=([0-9]{1,18}),fd=([0-9]{1,18})\)')
# A count, a queue size or a pid: ASCII digits, and few enough to be one (int() would refuse
# "²" although str.isdigit() accepts it, and refuses more than 4300 digits).
_NUMBER = re.compile(r"[0-9]{1,18}")


def _number(text: str) -> int | None:
    return int(text) if _NUMBER.fullmatch(text) else None


@dataclass(frozen=True)
class SocketRow(ToDict):
    """One socket of a netstat or ss snapshot.

    ``proto`` is "tcp", "tcp6", "udp" or "udp6" (ss rows: by address family). ``pid`` and
    ``program`` are None when the tool could not see the owner. ``processes`` lists every
    (program, pid, fd) that ss shows sharing the socket (a forked child that kept the
    listening socket shows up here); netstat shows one owner. ``info`` holds ss ``-i``'s
    key:value details (cwnd, rtt, mss, wscale, ...); empty for netstat.
    """

    source: str
    proto: str
    state: str
    local: Endpoint
    remote: Endpoint
    recv_q: int
    send_q: int
    pid: int | None = None
    program: str | None = None
    processes: tuple[tuple[str, int, int], ...] = ()
    info: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ProcessRow(ToDict):
    """One line of ``ps -e -o pid=,ppid=,stat=,nlwp=,args=``. ``nlwp`` is the thread count."""

    pid: int
    ppid: int
    stat: str
    nlwp: int
    args: str

    @property
    def zombie(self) -> bool:
        return self.stat.startswith("Z")


def _endpoint(text: str) -> Endpoint:
    """``1.2.3.4:80``, ``:::22``, ``::1:5000``, ``[::1]:5000``, ``*:22``, ``0.0.0.0:*``,
    ``127.0.0.53%lo:53``. A ``*`` port is 0; a scope (``%lo``) is dropped."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]
    return Endpoint(host or "*", _number(port) or 0)


def _family(ep: Endpoint) -> str:
    return "6" if ":" in ep.ip else ""


def parse_netstat(text: str) -> list[SocketRow]:
    """Rows of ``netstat -tanup``. Headers, blank lines and lines that are not a socket's
    row (queue sizes that are not numbers) are skipped."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5 or parts[0] not in {"tcp", "tcp6", "udp", "udp6"}:
            continue
        proto, recv_text, send_text, local, remote, *rest = parts
        recv_q, send_q = _number(recv_text), _number(send_text)
        if recv_q is None or send_q is None:
            continue
        state = "UNCONN"
        # A UDP socket has no state column unless it is connected ("ESTABLISHED").
        if rest and rest[0] != "-" and not re.match(r"^[0-9]+/", rest[0]):
            state = rest.pop(0)
        pid = program = None
        if rest and rest[0] != "-":
            pid_text, _, first = rest[0].partition("/")
            pid = _number(pid_text)
            program = " ".join([first, *rest[1:]]).strip() if pid is not None else None
        rows.append(
            SocketRow(
                source="netstat",
                proto=proto,
                state=state,
                local=_endpoint(local),
                remote=_endpoint(remote),
                recv_q=recv_q,
                send_q=send_q,
                pid=pid,
                program=program,
                processes=((program or "", pid, 0),) if pid is not None else (),
            )
        )
    return rows


def _ss_info(line: str) -> dict[str, str]:
    info = {}
    for token in line.split():
        key, sep, value = token.partition(":")
        info[key] = value if sep else ""
    return info


def parse_ss(text: str, proto: str = "tcp") -> list[SocketRow]:
    """Rows of ``ss -tanpi`` (``proto`` "udp" for ``ss -uanp``). The indented ``-i`` line
    under a socket fills that row's ``info``; lines that are not a socket's row are skipped."""
    rows: list[SocketRow] = []
    infos: list[dict[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            if infos and not infos[-1]:
                infos[-1].update(_ss_info(line))
            continue
        parts = line.split(None, 5)
        if len(parts) < 5 or parts[0] not in _SS_STATES:
            continue
        state, recv_text, send_text, local, remote = parts[:5]
        recv_q, send_q = _number(recv_text), _number(send_text)
        if recv_q is None or send_q is None:
            continue
        users = _SS_USER.findall(parts[5]) if len(parts) > 5 else []
        processes = tuple((name, int(pid), int(fd)) for name, pid, fd in users)
        local_ep = _endpoint(local)
        infos.append({})
        rows.append(
            SocketRow(
                source="ss",
                proto=proto + _family(local_ep),
                state=_SS_STATES[state],
                local=local_ep,
                remote=_endpoint(remote),
                recv_q=recv_q,
                send_q=send_q,
                pid=processes[0][1] if processes else None,
                program=processes[0][0] if processes else None,
                processes=processes,
                info=infos[-1],  # filled by the indented line that follows, if any
            )
        )
    return rows


def parse_sockets(text: str) -> list[SocketRow]:
    """netstat or ss output, told apart by their header lines."""
    head = text.lstrip().splitlines()[:2]
    if any(h.startswith(("Active Internet", "Proto ")) for h in head):
        return parse_netstat(text)
    return parse_ss(text)


def parse_ps(text: str) -> list[ProcessRow]:
    """Rows of ``ps -e -o pid=,ppid=,stat=,nlwp=,args=``; args keep their inner spaces."""
    rows = []
    for line in text.splitlines():
        parts = line.split(None, 4)
        if len(parts) < 4:
            continue
        pid, ppid, nlwp = _number(parts[0]), _number(parts[1]), _number(parts[3])
        if pid is None or ppid is None or nlwp is None:
            continue
        rows.append(
            ProcessRow(
                pid=pid,
                ppid=ppid,
                stat=parts[2],
                nlwp=nlwp,
                args=parts[4].rstrip() if len(parts) > 4 else "",
            )
        )
    return rows


# -- questions -----------------------------------------------------------------------------------


def children(rows: Sequence[ProcessRow], pid: int) -> list[ProcessRow]:
    return [r for r in rows if r.ppid == pid]


def descendants(rows: Sequence[ProcessRow], pid: int) -> list[ProcessRow]:
    """Children, grandchildren, ... of ``pid`` (not ``pid`` itself), breadth first."""
    out: list[ProcessRow] = []
    frontier = [pid]
    seen = {pid}
    while frontier:
        nxt = []
        for parent in frontier:
            for r in children(rows, parent):
                if r.pid not in seen:
                    seen.add(r.pid)
                    out.append(r)
                    nxt.append(r.pid)
        frontier = nxt
    return out


def zombies(rows: Sequence[ProcessRow], parent_pid: int | None = None) -> list[ProcessRow]:
    """Zombie processes: all of them, or only the children of ``parent_pid``."""
    return [r for r in rows if r.zombie and (parent_pid is None or r.ppid == parent_pid)]


def socket_states(rows: Iterable[SocketRow], port: int | None = None) -> Counter[str]:
    """How many sockets are in each state; with ``port``, only sockets with that port on
    either end (the server's listening socket and both ends of its connections)."""
    return Counter(r.state for r in rows if port is None or port in (r.local.port, r.remote.port))


def states_over_time(
    snapshots: Mapping[str, Iterable[SocketRow]], port: int | None = None
) -> dict[str, dict[str, int]]:
    """``socket_states`` per phase ("before", "during", "after"), in the mapping's order."""
    return {phase: dict(socket_states(rows, port)) for phase, rows in snapshots.items()}
