"""The user's programs and the services' restarts in a compose lab.

A user program is built inside each node container that runs it, as ``lab run --backend
docker`` builds it: in the node image, which carries the compilers, before the lab's first
step (``lab.programs.compose_steps``). Its sources reach the container two ways: a source
written ``lab:PATH`` is already in the image (``/opt/socket-lab/lab/programs``, the copy
``node.Dockerfile`` makes), any other one is bind-mounted read-only from where the topology
names it on this host, so the file follows edits to the sources until it is regenerated
elsewhere. The build folder is on the node's ``/tmp`` (a tmpfs, mounted ``exec`` for
these nodes only); the program runs from there with ``lab run``'s bounds
(``lab.programs.userprog``).

A ``restart`` is done by the service's own node once every client has finished: the
argument list of each restart (the service with or without ``reuseaddr``) is written here.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from lab.deploy.compose_phases import PYTHON, program_argv
from lab.programs.userprog import bounded
from lab.spec.model import Scenario, Service, Topology, UserProgram
from lab.spec.programs import SHIPPED_PREFIX

SHIPPED_IN_IMAGE = "/opt/socket-lab/lab/programs"  # node.Dockerfile's copy of lab/programs
SOURCES_IN_CONTAINER = "/lab-sources"
BUILD_IN_CONTAINER = "/tmp/programs"
# Docker mounts a tmpfs noexec by default; a node that builds runs what it built there.
TMPFS_EXEC = "/tmp:exec,mode=1777"


# Where a user's program runs, as nobody: KILL, for the node (root without its other
# capabilities) to stop it; DAC_READ_SEARCH and SYS_PTRACE, for the lab's tools to see into
# it. Its /proc/PID/fd is a folder of nobody's (mode 0500) whose links are behind a ptrace
# check: without them ss -p names no process of it, its copies' client ports stay unknown
# (lab.programs.userclient) and a descriptor count reads nothing.
USER_CAPS = ["KILL", "DAC_READ_SEARCH", "SYS_PTRACE"]


def user_caps(topology: Topology, node: str) -> list[str]:
    """What a node needs besides the lab's own capabilities (USER_CAPS where a user's
    program runs)."""
    return USER_CAPS if node in topology.user_program_nodes() else []


def programs_on(topology: Topology, node: str) -> list[UserProgram]:
    return [p for p in topology.used_programs() if node in topology.nodes_running(p.name)]


def folder(name: str) -> str:
    return f"{BUILD_IN_CONTAINER}/{name}"


def source_in_container(program: UserProgram, index: int) -> str:
    written = program.written[index]
    if written.startswith(SHIPPED_PREFIX):
        rest = posixpath.normpath(written[len(SHIPPED_PREFIX) :])
        return f"{SHIPPED_IN_IMAGE}/{rest}"
    return f"{SOURCES_IN_CONTAINER}/{program.name}/{program.sources[index].name}"


def source_mounts(topology: Topology, node: str) -> list[dict[str, Any]]:
    """Read-only bind mounts of the node's programs' own sources (not ``lab:`` ones)."""
    return [
        {
            "type": "bind",
            "source": str(src),
            "target": source_in_container(program, i),
            "read_only": True,
        }
        for program in programs_on(topology, node)
        for i, src in enumerate(program.sources)
        if not program.written[i].startswith(SHIPPED_PREFIX)
    ]


def build_options(topology: Topology, node: str) -> list[str]:
    """``--build JSON`` per program the node builds; ``keep`` on the first node that runs
    it, which keeps its build folder and log as the run's evidence (``programs/NAME``)."""
    options: list[str] = []
    for program in programs_on(topology, node):
        spec = {
            "name": program.name,
            "sources": [source_in_container(program, i) for i in range(len(program.sources))],
            "written": list(program.written),
            "build": list(program.build),
            "folder": folder(program.name),
            "keep": topology.nodes_running(program.name)[0] == node,
        }
        options += ["--build", json.dumps(spec, separators=(",", ":"))]
    everyone = topology.user_program_nodes()
    if not everyone:
        return options
    most = max(len(programs_on(topology, n)) for n in everyone)
    return [*options, "--builders", ",".join(everyone), "--most-builds", str(most)]


def service_argv(topology: Topology, service: Service) -> list[str]:
    """A lab program's argument list, or a user program's, bounded as ``lab run`` does."""
    if service.user is None:
        return program_argv(service.program, service.args())
    host = str(topology.node(service.node).interfaces[0].address)
    run = service.user.argv(host, service.port, client=False)
    return bounded(PYTHON, folder(service.program), run)


def user_client_argv(topology: Topology, sc: Scenario, target: str) -> list[str]:
    """``lab.programs.userclient`` driving the user's client program (bounded)."""
    name = sc.client_program or ""
    port = topology.service(sc.service).port
    run = topology.program(name).argv(target, port, client=True)
    args = ["--host", target, "--port", str(port), "--name", name]
    args += ["--count", str(sc.concurrency), "--hold", str(sc.hold)]
    args += ["--timeout", f"{sc.reply_timeout:g}"]
    args += ["--protocol", topology.service(sc.service).protocol]
    args += [arg for line in sc.send for arg in ("--send", line)]
    return program_argv("userclient", [*args, "--", *bounded(PYTHON, folder(name), run)])


def user_service_options(topology: Topology, node: str) -> list[str]:
    """The node's services that are user programs: their logs are capped and a stop
    kills them after a grace period, as in ``lab run``."""
    return [
        arg
        for s in topology.services
        if s.node == node and s.user is not None
        for arg in ("--user-service", s.name)
    ]


def restart_options(topology: Topology, node: str) -> list[str]:
    """``--restart JSON`` per restart of a service on ``node``, in file order."""
    options: list[str] = []
    for sc in topology.scenarios:
        service = topology.service(sc.service)
        if service.node != node:
            continue
        for index, restart in enumerate(sc.restart, start=1):
            again = service.with_option("reuseaddr", restart.reuseaddr)
            spec = {
                "scenario": sc.name,
                "index": index,
                "service": service.name,
                "reuseaddr": restart.reuseaddr,
                "expect": restart.expect,
                "protocol": service.protocol,
                "port": service.port,
                "argv": service_argv(topology, again),
            }
            options += ["--restart", json.dumps(spec, separators=(",", ":"))]
    return options
