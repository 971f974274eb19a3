"""What is graded: a submission's files as a user program, and the standard topology it
runs in (the server on its own host, the clients on two others), built in code."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.errors import UsageError
from lab.spec.model import Interface, Network, Node, Scenario, Service, Topology, UserProgram
from lab.spec.programs import default_commands

MODELS = ("fork", "thread", "iterative", "udp", "dict")
DEFAULT_PORTS = {"fork": 9999, "thread": 8000, "iterative": 9877, "udp": 8080, "dict": 8080}
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".h", ".hpp", ".py")
PROGRAM = "submission"
HOSTILE_NODE = "c3"  # the 500 clients' node; the hostile ones run there after them
NODE_NAMES = ("server", "c1", "c2", HOSTILE_NODE)
SUBNET = IPv4Network("10.77.210.0/24")
HOLD = 2.0  # seconds the 50 concurrent connections stay open (children, threads counted)
# The single client's connection (the close is judged on it) has the wire to itself: a
# capture that drops packets in the 50 clients' burst (seen on Docker) cannot lose it.
ALONE = 1.0
# The 500 clients start once the 50 held ones are gone, so each scenario's count is its own.
LATER = 2 * HOLD + 1.0


@dataclass(frozen=True)
class Submission:
    """One student's work: its name (the folder's or the file's) and its source files."""

    name: str
    sources: tuple[Path, ...]


def read_submission(paths: list[Path]) -> Submission:
    """A folder (its source files, not sub-folders) or one or more files."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not any(p.suffix in SOURCE_SUFFIXES for p in files):
            raise UsageError(f"{folder}: no source file (.c, .cpp, .py ...) in this folder")
        return Submission(folder.resolve().name, tuple(p.resolve() for p in files))
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise UsageError(f"{folders[0]}: give one folder, or source files, not both")
    return Submission(paths[0].stem, tuple(p.resolve() for p in paths))


def user_program(sub: Submission, model: str) -> UserProgram:
    build, run = default_commands(PROGRAM, list(sub.sources))
    if run is None:
        names = ", ".join(p.name for p in sub.sources)
        raise UsageError(f"{sub.name}: cannot tell how to build or run {names}")
    return UserProgram(
        name=PROGRAM,
        sources=sub.sources,
        build=tuple(build),
        run=tuple(run),
        protocol="udp" if model == "udp" else "tcp",
        model="other" if model == "dict" else model,
        written=tuple(p.name for p in sub.sources),
    )


def request(model: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The lines a normal client sends and the replies it must get."""
    if model == "dict":
        return ("hello", "world"), ("你好", "世界")
    if model == "udp":
        return ("HELLO", "DATAGRAM TWO"), ("HELLO", "DATAGRAM TWO")
    return ("hello", "world"), ("HELLO", "WORLD")


def grading_topology(sub: Submission, model: str, port: int) -> Topology:
    """The server on ``server``; one client on ``c1``, 50 at once on ``c2``, 500 on ``c3``
    (then the hostile clients). A node each: a UDP flow is told apart by its addresses, and
    a source port reused on one host would mix two scenarios' datagrams."""
    hosts = [IPv4Address(int(SUBNET.network_address) + i) for i in (10, 11, 12, 13)]
    nodes = tuple(
        Node(name, (Interface("lan", addr),)) for name, addr in zip(NODE_NAMES, hosts, strict=True)
    )
    program = user_program(sub, model)
    service = Service("graded", "server", PROGRAM, port, user=program)
    send, expect = request(model)
    tcp = model != "udp"
    close = ("close-wait-on-server", "time-wait-on-client") if tcp else ()
    claims = {"dict": ("utf8-on-wire",), "iterative": ()}.get(model, ())
    # An iterative server serves held connections one after the other: not held there.
    hold = HOLD if model in ("fork", "thread") else 0.0
    scenarios = (
        Scenario("one", "graded", ("c1",), send, expect, claims=(*close, *claims)),
        Scenario(
            "fifty", "graded", ("c2",), send, expect, concurrency=50, hold=hold, start_after=ALONE
        ),
        Scenario(
            "five-hundred",
            "graded",
            (HOSTILE_NODE,),
            send,
            expect,
            concurrency=500,
            start_after=ALONE + LATER,
        ),
    )
    return Topology(
        name=f"grade-{model}",
        networks=(Network("lan", SUBNET),),
        nodes=nodes,
        services=(service,),
        scenarios=scenarios,
        programs=(program,),
        description=f"lab grade: {sub.name} as a {model} server",
    )
