"""Every key a topology file may hold, declared once, as data.

Each section (the top level, a network, a node, ...) is an ordered table of ``Key``s: its
type, range or choices, default, whether it is required, and its help text. The reader
(``lab.spec.sections``) checks keys and plain values against these tables, the README's
key tables are generated from them (``lab.spec.docs``) and so is the JSON Schema
(``lab.spec.schema``). A table's order is the order "known keys" hints list keys in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lab.spec.keys_netem import IMPAIR, NETEM, NODE_NETEM
from lab.spec.keytypes import Key, Kind, Scalar, Section
from lab.spec.model import PROBE_ERRORS, PROBES, RESTART_ERRORS

__all__ = ["IMPAIR", "NETEM", "NODE_NETEM", "Key", "Kind", "Scalar", "Section"]

# Names become parts of namespace, container and interface names: keep them short and tame.
NAME_PATTERN = "[a-z][a-z0-9-]{0,23}"
NAME_RE = re.compile(NAME_PATTERN)
NAME_RULE = "a name is 1-24 characters of a-z, 0-9 and '-', starting with a letter"
# SSH values end up as arguments of a connection, never in a shell; still, keep them tame
# (no leading '-', no spaces or quotes) so that a typo is caught here and not at a prompt.
SSH_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
SSH_USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
SSH_PYTHON_RE = re.compile(r"[A-Za-z0-9_./+-]{1,255}")
# A swarm node's hostname or ID, as `--engines` files name them.
ENGINE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")

MAX_NODES = 1000  # the netns backend brings 1,000 up in seconds
MAX_NETWORKS = 250
MAX_RESTARTS = 10
MAX_ITEM_BYTES = 1024
MAX_FILTER_CHARS = 512
MIN_PREFIX, MAX_PREFIX = 8, 30
PORT_RANGE = (1, 65535)
# A network's MTU: from IPv4's minimum datagram every host must take, to a jumbo frame.
MTU_RANGE = (576, 9000)


TOP = Section(
    "top level",
    (
        Key("name", "name", "the lab's name; default: the file's stem, which must then be a "
            "valid name"),
        Key("description", "text", "shown in reports"),
        Key("networks", "mapping", "at least one, at most 250", required=True,
            type_doc="mapping name -> network"),
        Key("nodes", "mapping", "at least one, at most 1000", required=True,
            type_doc="mapping name -> node"),
        Key("programs", "mapping", "the user's own programs (C, C++, Python or any "
            "executable), built where they run; a service's `program` or a scenario's "
            "`client_program` may name one", type_doc="mapping name -> program"),
        Key("services", "mapping", "servers that run for the whole run",
            type_doc="mapping name -> service"),
        Key("scenarios", "list", "run in file order", type_doc="list of scenarios"),
        Key("capture", "mapping", "packet capture settings"),
    ),
)  # fmt: skip

NETWORK = Section(
    "networks.NAME",
    (
        Key("subnet", "subnet", "written as its network address (`10.77.1.0/24`, not "
            "`10.77.1.5/24`); prefix `/8` to `/30`; inside a private range (`10.0.0.0/8`, "
            "`172.16.0.0/12`, `192.168.0.0/16`) so that lab routes never shadow real ones; "
            "no two networks of a file may overlap", required=True),
        Key("netem", "mapping", "impairments of the network (below), on what each attached "
            "node receives: each packet crossing it is impaired once. A node's own `netem` "
            "replaces it there", type_doc="mapping, see `netem`"),
        Key("mtu", "integer", "the link MTU of every interface on the network (TCP's MSS "
            "follows it: MTU - 40). Those interfaces also hand the kernel one segment per "
            "packet (`gso_max_segs 1`), so that captures show the segments the link carries, "
            "not offload-sized ones. netns and docker only; default: 1500",
            bounds=MTU_RANGE),
    ),
)  # fmt: skip

NODE = Section(
    "nodes.NAME",
    (
        Key("interfaces", "mapping", "at least one; each network must be declared; the address "
            "must be inside the network's subnet, not its network or broadcast address, and "
            "used by no other interface of the file. The order is the node's interface order; "
            "the first address is the one clients dial through a gateway", required=True,
            type_doc="mapping network -> IPv4 address"),
        Key("router", "boolean", "`true` turns on IPv4 forwarding between the node's networks",
            default=False),
        Key("gateway", "address", "the node's default route. It must be on one of the node's "
            "own networks, must not be its own address, and must be the address of a node "
            "with `router: true`. A router takes no gateway: it forwards only between the "
            "networks it is attached to"),
        Key("ssh", "mapping", "the node is an existing machine reached over SSH "
            "(`--backend ssh`). When any node has `ssh`, every node must",
            type_doc="mapping, see below"),
        Key("engine", "text", "the swarm node (hostname or ID, as the `--engines` file names "
            "it) whose engine runs this node (`--backend swarm`); default: spread so that "
            "each scenario's server and clients are on different engines"),
        Key("netem", "mapping", "impairments per interface (a network of the node) and "
            "direction, `ingress` (what the node receives) or `egress`: see `netem` below "
            "for where each is applied", type_doc="mapping network -> `{ingress, egress}`"),
    ),
)  # fmt: skip

_SSH_KEYS = (
    Key("host", "text", "host name or address to connect to (letters, digits, `.`, `:`, "
        "`-`, `_`; no leading `-`)", required=True),
    Key("port", "integer", "the SSH port", default=22, bounds=PORT_RANGE),
    Key("user", "text", "login name. A user other than root needs passwordless `sudo` "
        "(tcpdump needs root): pre-flight refuses one without it. The temp dir is then the "
        "user's, the lab's commands run as root through `sudo -n`", default="root"),
    Key("key", "text", "private key file; `~` and paths relative to the topology file "
        "allowed. Refused when group or others can read it (`chmod 600`). A "
        "passphrase-protected key must be used through an agent: the lab never reads or "
        "stores passwords"),
    Key("agent", "boolean", "also offer the keys of the ssh-agent at `$SSH_AUTH_SOCK` (with "
        "no `key`, an agent that is not running or holds no keys is refused before "
        "connecting). With neither `key` nor `agent`, the user's default keys "
        "(`~/.ssh/id_*`) are tried", default=False),
)  # fmt: skip

SSH = Section(
    "nodes.NAME.ssh",
    (
        *_SSH_KEYS,
        Key("jump", "mapping", "connect through this host first (like OpenSSH's `ProxyJump`): "
            "for a machine whose sshd only the jump host can reach. `host` is then an address "
            "as the jump host sees it", type_doc="mapping `{host, port, user, key, agent}`"),
        Key("python", "text", "the host's Python, 3.11 or newer, that runs the lab's programs "
            "(an interpreter path, no spaces or quotes)", default="python3"),
    ),
)  # fmt: skip

JUMP = Section("nodes.NAME.ssh.jump", _SSH_KEYS)

USER_PROTOCOLS = ("tcp", "udp")
USER_MODELS = ("fork", "thread", "iterative", "udp", "other")
# Resource bounds of a user program (see lab.programs.userprog).
USER_PORT_MIN = 1024  # user programs run unprivileged

PROGRAM = Section(
    "programs.NAME",
    (
        Key("sources", "list", "files or folders, relative to the topology file (any path "
            "the user running the lab can read is allowed, `..` and absolute ones too). Each "
            "is copied into the program's build folder under its own name, so two sources may "
            "not share a name. `lab:PATH` names a file the lab ships under `lab/programs/` "
            "(`lab:c/fork_server.c`, `lab:dictionary.tsv`: the course's C programs)",
            required=True, type_doc="list of paths"),
        Key("build", "list", "the build command as an argument list, run in the build folder "
            "(never through a shell: `;`, `$()` and spaces are literal). Default by the "
            "sources: any `.cpp`/`.cc`/`.cxx` -> `[c++, -Wall, -Wextra, -O2, -pthread, -o, "
            "NAME, <every .c and .cpp>]`; else any `.c` -> the same with `cc`; a `.py` or an "
            "executable file is not built", type_doc="list of text"),
        Key("run", "list", "the command as an argument list, run in the build folder; "
            "placeholders `{port}` and `{host}` (the service's port and address) only. "
            "Default: the built `./NAME`, `python3 FILE` for one `.py`, `./FILE` for one "
            "executable; followed by `{port}` for a service and by `{host} {port}` for a "
            "scenario's client", type_doc="list of text"),
        Key("protocol", "choice", "what the program speaks", default="tcp",
            choices=USER_PROTOCOLS, what="protocol"),
        Key("model", "choice", "the server's design, which decides the built-in checks: "
            "`fork` one child per held connection and all reaped, `thread` one process with "
            "N+1 threads, `iterative` one client at a time, `udp` datagrams, `other` the "
            "reply and capture checks only. `udp` goes with `protocol: udp` only, the others "
            "with `tcp`; default `udp` for UDP, `other` for TCP", choices=USER_MODELS,
            what="model"),
    ),
)  # fmt: skip

SERVICE = Section(
    "services.NAME",
    (
        Key("node", "text", "the node the server runs on", required=True, type_doc="node name"),
        Key("program", "text", "the server program; one of the programs below, or a user "
            "program of `programs`", required=True, type_doc="program"),
        Key("port", "integer", "default per program (below); required for a user program, "
            "which runs unprivileged and so needs a port of 1024 or more. Two services on "
            "one node may not use the same protocol and port (8080/tcp and 8080/udp may coexist)",
            bounds=PORT_RANGE),
        Key("options", "mapping", "per program (below); unknown options are refused (a user "
            "program takes none: its `run` says what it gets)"),
        Key("bind", "address", "the address the server binds: one of its node's addresses, "
            "or `0.0.0.0` (`INADDR_ANY`, every address of the node); a lab program only",
            default="0.0.0.0"),
    ),
)  # fmt: skip

# Options of the server programs; which program takes which is ``model.SERVICE_OPTIONS``.
OPTIONS = Section(
    "services.NAME.options",
    (
        Key("backlog", "integer", "the `listen()` backlog (the kernel caps it at "
            "`net.core.somaxconn`)", bounds=(1, 4096)),
        Key("reuseaddr", "boolean", "set `SO_REUSEADDR` before `bind()`"),
        Key("no_reap", "boolean", "do not reap children: they stay zombies, visible in `ps`"),
        Key("double_fork", "boolean", "serve each client in a grandchild, so the parent only "
            "waits for a short-lived child"),
        Key("close_delay", "number", "seconds to wait after a client's EOF before closing: the "
            "server's ACK of the client's FIN goes out alone and its FIN later, a close in "
            "four segments (without it Linux usually folds the ACK into the FIN)",
            bounds=(0, 60)),
    ),
)  # fmt: skip

_TCP_ONLY = "; TCP services only"
SCENARIO = Section(
    "scenarios[i]",
    (
        Key("name", "name", "unique among the file's scenarios", required=True),
        Key("service", "text", "the service the clients talk to", required=True,
            type_doc="service name"),
        Key("clients", "list", "at least one, each listed once (use `concurrency` for more "
            "connections). A client may not be the service's own node (it would talk over "
            "loopback, which is not captured). Each client must reach the server: either they "
            "share a network, or the client's gateway is a router attached to the network of "
            "the server's first interface and the server's gateway is a router attached to "
            "the network the client sends from", required=True, type_doc="list of node names"),
        Key("send", "list", "at least one item; each a line (TCP, the newline is added) or a "
            "datagram (UDP): non-empty, no line breaks, at most 1024 bytes in UTF-8",
            required=True, required_when="yes, unless `probe`", type_doc="list of text"),
        Key("expect", "list", "what must come back, one item per item of `send`, same rules",
            required=True, required_when="yes, unless `probe`", type_doc="list of text"),
        Key("concurrency", "integer", "connections per client node, opened together",
            default=1, bounds=(1, 1000)),
        Key("hold", "number", "seconds each connection stays open after its replies",
            default=0, bounds=(0, 600)),
        Key("half_close", "boolean", "close only the sending half (`shutdown(SHUT_WR)`) "
            "before reading the last replies" + _TCP_ONLY, default=False),
        Key("client_program", "text", "run this user program (of `programs`) as the client on "
            "each client node instead of the lab's line client: each `send` line goes to its "
            "stdin, and its stdout lines are compared with `expect` (like `str_cli`); its "
            "stdin is closed after the replies (and `hold` seconds). Its protocol must be the "
            "service's; `probe`, `half_close`, `repeat`, `rcvbuf` and `pause_reading` do not "
            "apply", type_doc="program name"),
        Key("claims", "list", "statements of the course checked on this scenario's evidence "
            "(below); each name known and listed once, and about the service's protocol",
            type_doc="list of claim names"),
        Key("probe", "choice", "run `lab.programs.probe` on each client instead of the line "
            "client (below); TCP services only. A probe sends its own bytes: `send` and "
            "`expect` are then not required, and `send`, `expect`, `concurrency`, `hold`, "
            "`half_close`, `repeat`, `rcvbuf` and `pause_reading` are refused",
            choices=PROBES, what="probe"),
        Key("port", "integer", "the port the refused probe dials; no TCP service of the "
            "service's node may use it", bounds=PORT_RANGE,
            required_when="with `probe: refused` only, and required there"),
        Key("expect_error", "choice", "the errno each probe must end with; without it, no "
            "call of the probe may fail", choices=PROBE_ERRORS, what="error",
            required_when="with `probe` only"),
        Key("restart", "list", "after every scenario's clients have finished, restart the "
            "scenario's service once per item (below)" + _TCP_ONLY,
            type_doc="list of 1..10 `{reuseaddr: BOOL, expect: EADDRINUSE}`"),
        Key("start_after", "number", "seconds after the scenarios start before this one's "
            "clients do (e.g. while another scenario holds the only connection an iterative "
            "server serves)", default=0, bounds=(0, 60)),
        Key("repeat", "integer", "each connection sends `send` this many times over and must "
            "get `expect` back as often" + _TCP_ONLY, default=1, bounds=(1, 10000)),
        Key("rcvbuf", "integer", "`SO_RCVBUF` of the clients' sockets, set before connecting "
            "(Linux doubles it; 0, the default, leaves the kernel's)" + _TCP_ONLY,
            default=0, bounds=(256, 1 << 24)),
        Key("pause_reading", "number", "the client sends every line from a second thread and "
            "reads no reply for this many seconds, then reads them all: its receive buffer "
            "fills and its window closes" + _TCP_ONLY, default=0, bounds=(0, 60)),
        Key("reply_timeout", "number", "seconds each client waits for a connection and for "
            "each reply before giving up (ETIMEDOUT); more on a lossy link, where a segment "
            "lost again and again waits out a retransmission timer that doubles",
            default=10, bounds=(1, 600)),
        Key("impair", "list", "netem changed while the scenarios run (below): each step "
            "replaces one interface's netem in one direction at `start` and puts back what the "
            "topology gave it (or none) after `duration`",
            type_doc="list of `{node, network, direction, start, duration, netem}`"),
        Key("server_closes_after", "integer", "the service closes each connection after this "
            "many replies, on purpose (a server that meets its limit): the replies check then "
            "wants the first N items of `expect` and the server's close, and what the client "
            "does about the close is for the claims (`early-close-noticed`)", default=0,
            bounds=(1, 10000)),
        Key("watch", "number", "after the `after` snapshot, snapshot every node every "
            "2 s for this many seconds (phases `watch-001`, `watch-002`, ...; run.json's "
            "`watch` gives each one's time), e.g. to see a TIME_WAIT go: the longest `watch` "
            "of the file's scenarios is taken once", default=0, bounds=(0, 120)),
        Key("bug", "mapping", "the service is a program with a known bug, and the checks "
            "named in `caught_by` are expected to fail: each passes as `NAME (bug)` when it "
            "fails, its detail giving the bug and the evidence, and fails when it holds (the "
            "bug did not show). Below; the spot-the-bug experiments use it",
            type_doc="`{what: TEXT, caught_by: [CHECK, ...], race: [CHECK, ...]}`"),
    ),
)  # fmt: skip

BUG = Section(
    "scenarios[i].bug",
    (
        Key("what", "text", "the bug, in one line: the report states it beside the evidence",
            required=True),
        Key("caught_by", "list", "the checks that expose the bug: claims of the scenario's "
            "`claims`, or the built-in `replies` (the replies compared with `expect`) and "
            "`service-ran` (the service ran until the lab stopped it); each listed once",
            required=True, type_doc="list of check names"),
        Key("race", "list", "those of `caught_by` that only a race makes fail, now and then "
            "(timing decides): they pass either way, and say whether the bug showed this run",
            type_doc="list of check names"),
    ),
)  # fmt: skip

RESTART = Section(
    "scenarios[i].restart[j]",
    (
        Key("reuseaddr", "boolean", "start the service again with `SO_REUSEADDR` or without "
            "(overriding its `options`)", required=True),
        Key("expect", "choice", "the errno the new start must fail with (its `bind()`); "
            "without it, it must listen", choices=RESTART_ERRORS, what="restart error"),
    ),
)  # fmt: skip

CAPTURE = Section(
    "capture",
    (
        Key("enabled", "boolean", "run tcpdump on every node's interfaces", default=True),
        Key("snaplen", "integer", "bytes kept of each packet", default=262144,
            bounds=(64, 262144)),
        Key("buffer", "integer", "MiB of kernel ring for each tcpdump (`-B`): it holds the "
            "packets that arrive while tcpdump waits for a CPU; the lab's rings together are "
            "kept to 1 GiB (each at least 2 MiB); what a full ring drops is said in the checks "
            "on that capture", default=8, bounds=(1, 1024)),
        Key("filter", "text", "a BPF filter, at most 512 characters of letters, digits, space "
            "and `. : / ( ) [ ] ! < > = & \\| + * -` (enough for `tcp[13] & 2 != 0` or "
            "`host 10.77.1.10 and port 9999`); default: everything", default=""),
    ),
)  # fmt: skip

# Every table, by the title the docs use for it.
SECTIONS: Mapping[str, Section] = {
    s.title: s for s in (TOP, NETWORK, NODE, SSH, JUMP, PROGRAM, SERVICE, OPTIONS, SCENARIO,
                         RESTART, BUG, CAPTURE, NETEM, NODE_NETEM, IMPAIR)
}  # fmt: skip
# The scenario's plain keys: read as declared, handed to the model as they are. (`port` is
# plain too but is read with its line, which the cross checks need.)
SCENARIO_KNOBS = tuple(
    k.name for k in SCENARIO.keys if k.kind in ("integer", "number", "boolean") and k.name != "port"
)
# Scenario keys that only the TCP line client knows (half_close is checked on its own).
TCP_ONLY_KEYS = ("repeat", "rcvbuf", "pause_reading")
# Keys of a line-client scenario that a user client program does not take.
# The built-in checks a scenario's ``bug.caught_by`` may name, with the names they are
# reported under.
BUILTIN_CHECKS: Mapping[str, str] = {
    "replies": "replies",
    "service-ran": "service ran until stopped",
}
NOT_WITH_CLIENT_PROGRAM = ("probe", "half_close", "repeat", "rcvbuf", "pause_reading")
# Keys of a line-client scenario that a probe scenario does not take (it sends its own bytes).
NOT_WITH_PROBE = (
    "send", "expect", "concurrency", "hold", "half_close", "repeat", "rcvbuf", "pause_reading",
)  # fmt: skip

# Port a service listens on when the file gives none, per program.
DEFAULT_PORTS: Mapping[str, int] = {
    "fork_server": 9999,
    "thread_server": 8000,
    "iterative_server": 9877,
    "dict_server": 8080,
    "udp_echo": 8080,
}
