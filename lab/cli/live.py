"""The live lab's commands: ``lab up``, ``exec``, ``shell``, ``capture``, ``snapshot``,
``scenario`` and ``down`` (see ``lab.run.live`` for how the lab stays up between them)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from lab.cli.progress import progress_printer
from lab.errors import Interrupted, LabError, UsageError, read_back, read_back_all
from lab.i18n import msg, pad, t

if TYPE_CHECKING:
    from lab.run.livestate import LiveState, Reply

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def cmd_up(args: argparse.Namespace) -> int:
    from lab.cli.engines import choose
    from lab.run.livestate import live_dir, unique_name
    from lab.run.outdir import claim_results_folder
    from lab.spec.topology import load_topology

    topology = load_topology(Path(args.file))
    if args.name is not None and not NAME_RE.match(args.name):
        raise UsageError.said(msg("live.bad_name", name=repr(args.name)))
    if args.out is not None:
        claim_results_folder(topology, args.out, create=False)
    backend_name = str(args.backend)
    if backend_name == "auto" and any(n.ssh is not None for n in topology.nodes):
        backend_name = "ssh"
    backend_cls = choose(args, backend_name)
    if backend_name == "ssh":
        from lab.run.backends.ssh.backend import SshBackend

        assert issubclass(backend_cls, SshBackend)
        known = Path(args.known_hosts) if args.known_hosts else None
        backend_cls = backend_cls.configured(
            known_hosts=known, accept_new=args.accept_new_host_keys
        )
    elif args.known_hosts or args.accept_new_host_keys:
        raise UsageError.said(msg("live.ssh_options"))
    mismatch = backend_cls.topology_problems(topology)
    if mismatch:
        problems = read_back_all(mismatch)
        raise UsageError.said(msg("live.nothing_created", file=args.file, problems=problems))
    name = unique_name(args.name or topology.name)
    live_dir().mkdir(parents=True, exist_ok=True)
    out_dir = claim_results_folder(topology, args.out)
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the supervisor: never returns
        os.close(read_end)
        from lab.cli.livesup import supervise

        supervise(topology, backend_cls, out_dir, name, write_end, args.quiet)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
    except KeyboardInterrupt:
        # The supervisor is in its own session: Ctrl-C here reaches it only this way.
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        raise Interrupted(signal.SIGINT) from None
    if not data.startswith(b"R"):
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) or 1
    from lab.run.livestate import LiveState

    state = LiveState.from_json(json.loads(data[1:]))
    assert state is not None
    print(_table(state))
    return 0


def _table(state: LiveState) -> str:
    head = t("livecli.table.head", name=state.name, run=state.run_id, backend=state.backend,
             out=state.out)  # fmt: skip
    node_, iface_ = pad(t("livecli.table.node"), 10), pad(t("livecli.table.interface"), 10)
    lines = [head, "", f"{node_} {iface_} {t('livecli.table.address')}"]
    for node in state.nodes:
        for iface, addr in node.addresses.items():
            lines.append(f"{node.name:10} {iface:10} {addr}")
    if state.services:
        service, program = pad(t("livecli.table.service"), 10), pad(t("livecli.table.program"), 14)
        lines += ["", f"{service} {program} {t('livecli.table.where')}"]
        for svc in state.services:
            sname, program, where = svc.split(" ", 2)
            address, _, node_name = where.rpartition(" on ")
            if address:
                where = t("livecli.table.on", where=address, node=node_name)
            lines.append(f"{sname:10} {program:14} {where}")
    first = next((n.name for n in state.nodes if n.name != "server"), state.nodes[0].name)
    lab = state.name
    lines += [
        "",
        t("livecli.table.get_in"),
        f"  lab shell {lab} {first}                  {t('livecli.table.shell')}",
        f"  lab exec {lab} {first} -- netstat -tn    {t('livecli.table.exec')}",
        f"  lab capture {lab} {first} eth0 | tshark -r -",
        f"  lab snapshot {lab} [NAME]       {t('livecli.table.snapshot')}",
    ]
    if state.scenarios:
        names = ", ".join(state.scenarios)
        lines.append(
            f"  lab scenario {lab} NAME         {t('livecli.table.scenario', names=names)}"
        )
    lines.append(f"  lab down {lab}                   {t('livecli.table.down')}")
    if state.backend == "netns":
        missing = [
            f"{tool} (apt-get install {pkg})"
            for tool, pkg in _hand_tools().items()
            if shutil.which(tool) is None
        ]
        if missing:
            lines.append(t("livecli.table.missing", missing=", ".join(missing)))
    return "\n".join(lines)


def _hand_tools() -> dict[str, str]:
    from lab.run.livestate import HAND_TOOLS

    return HAND_TOOLS


def _live(which: str | None, *, alive: bool = True) -> LiveState:
    from lab.run.livestate import find_live

    state = find_live(which)
    if alive and not state.alive():
        said = msg("live.stale_pid", name=state.name, run=state.run_id, pid=state.pid,
                   again=state.name)  # fmt: skip
        raise LabError.said(said)
    return state


def _split(words: list[str], usage: str) -> tuple[str | None, str, list[str]]:
    """``[LAB] NODE -- CMD...`` into its parts."""
    if "--" in words:
        cut = words.index("--")
        head, cmd = words[:cut], words[cut + 1 :]
    else:
        head, cmd = words[:2], words[2:]
        if len(head) == 2 and not cmd:
            head, cmd = words[:1], words[1:]
    if len(head) not in (1, 2):
        raise UsageError.said(msg("live.usage", usage=usage))
    lab = head[0] if len(head) == 2 else None
    return lab, head[-1], cmd


def _exec_on(state: LiveState, node: str, cmd: list[str], *, tty: bool) -> NoReturn:
    """Become the command on the node: the terminal, signals and exit status are its own,
    and a Ctrl-C or a killed shell reaches only it, never the lab."""
    from lab.run.livestate import node_command

    # A script's background job inherits SIGINT and SIGQUIT ignored, and an ignored signal
    # survives exec: the node's command would then never stop on Ctrl-C or `kill -INT`.
    # It is the user's foreground command, so it gets them as a terminal would give them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    if state.backend == "ssh":
        from lab.run.live_ssh import ssh_attach

        state.node(node)
        sys.stdout.flush()
        raise SystemExit(ssh_attach(state.run_id, node, cmd, tty=tty))
    argv = node_command(state, node, cmd, tty=tty)
    if state.backend == "netns" and "/" not in cmd[0] and shutil.which(cmd[0]) is None:
        pkg = _hand_tools().get(cmd[0])
        said = (
            t("livecli.not_installed_pkg", program=cmd[0], package=pkg)
            if pkg
            else t("livecli.not_installed", program=cmd[0])
        )
        print(f"lab: {said}", file=sys.stderr)
        raise SystemExit(127)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)  # noqa: S606 (an argument list; no shell)
    except OSError as exc:
        raise LabError.said(msg("live.cannot_run", program=argv[0], error=exc)) from exc


def cmd_exec(args: argparse.Namespace) -> int:
    lab, node, cmd = _split(args.words, "lab exec [-t] [LAB] NODE -- CMD...")
    if not cmd:
        raise UsageError.said(msg("live.exec_nothing"))
    if args.tty and not sys.stdin.isatty():
        raise UsageError.said(msg("live.exec_tty"))
    state = _live(lab)
    # `docker exec` and ssh forward no signal: at a terminal the command gets one, so that Ctrl-C
    # stops it and not only the client (a netns command shares this terminal already).
    at_terminal = sys.stdin.isatty() and sys.stdout.isatty()
    forwards_no_signal = state.backend in ("docker", "swarm", "ssh")
    _exec_on(state, node, cmd, tty=args.tty or (forwards_no_signal and at_terminal))


def cmd_shell(args: argparse.Namespace) -> int:
    if len(args.words) not in (1, 2):
        raise UsageError.said(msg("live.usage", usage="lab shell [LAB] NODE"))
    state = _live(args.words[0] if len(args.words) == 2 else None)
    node = args.words[-1]
    prompt = f"[{state.name}:{node}] \\w\\$ "
    if state.backend == "ssh":  # whatever the host has: a fixed script, the prompt its argument
        script = 'export PS1="$1"; command -v bash >/dev/null && exec bash --norc -i; exec sh -i'
        _exec_on(state, node, ["sh", "-c", script, "sh", prompt], tty=True)
    shell = ["bash", "--norc", "-i"] if state.backend != "netns" or shutil.which("bash") else []
    _exec_on(state, node, ["env", f"PS1={prompt}", *(shell or ["sh", "-i"])], tty=True)


def cmd_capture(args: argparse.Namespace) -> int:
    from lab.spec.model import Capture

    if len(args.words) not in (1, 2, 3):
        raise UsageError.said(msg("live.usage", usage="lab capture [LAB] NODE [IFACE] [-w FILE]"))
    words = list(args.words)
    # Two words are LAB NODE when the first names a live lab, else NODE IFACE: a real host's
    # interfaces are named ens3 or enp0s3 as often as eth0.
    if len(words) == 3 or (len(words) == 2 and _is_lab(words[0])):
        state = _live(words.pop(0))
    else:
        state = _live(None)
    node = state.node(words[0])
    iface = words[1] if len(words) == 2 else next(iter(node.addresses), "eth0")
    if iface not in node.addresses:
        have = ", ".join(node.addresses)
        said = msg("live.no_iface", node=node.name, iface=repr(iface), have=have)
        raise UsageError.said(said)
    if args.write is not None:
        try:
            fd = os.open(args.write, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise UsageError.said(msg("live.write_file", file=args.write, error=exc)) from exc
        os.dup2(fd, 1)
        os.close(fd)
    elif sys.stdout.isatty():
        raise UsageError.said(msg("live.capture_tty"))
    cmd = ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-s", "262144"]
    cmd += ["-B", str(Capture().buffer * 1024), "-w", "-"]  # a run's capture's ring
    _exec_on(state, node.name, cmd, tty=False)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from lab.run.livestate import check_phase_name, request

    if len(args.words) > 2:
        raise UsageError.said(msg("live.usage", usage="lab snapshot [LAB] [NAME]"))
    words = list(args.words)
    lab = words.pop(0) if len(words) == 2 else None
    if len(words) == 1 and lab is None and _is_lab(words[0]):
        lab = words.pop(0)
    name = words[0] if words else ""
    if name:
        check_phase_name(name)
    return answer(request(_live(lab), "snapshot", name))


def answer(reply: Reply) -> int:
    """A live lab's reply (its supervisor's English) printed in the current language."""
    said = read_back(reply.message)
    print(said if reply.ok else f"lab: {said}", file=sys.stdout if reply.ok else sys.stderr)
    return reply.exit_code


def _is_lab(word: str) -> bool:
    from lab.run.livestate import live_states

    return any(word in (s.name, s.run_id) for s in live_states())


def cmd_scenario(args: argparse.Namespace) -> int:
    from lab.run.livestate import request

    if len(args.words) not in (1, 2):
        raise UsageError.said(msg("live.usage", usage="lab scenario [LAB] NAME"))
    state = _live(args.words[0] if len(args.words) == 2 else None)
    return answer(request(state, "scenario", args.words[-1]))


def cmd_down(args: argparse.Namespace) -> int:
    from lab.run.livestate import request

    state = _live(args.lab, alive=False)
    if state.alive():
        reply = request(state, "down")
        print(read_back(reply.message) if reply.ok else f"lab: {read_back(reply.message)}")
        return reply.exit_code
    return _down_stale(state)


def _down_stale(state: LiveState) -> int:
    """A lab whose supervisor is gone (killed, a reboot): what its nodes hold is collected,
    its objects removed as ``lab clean --run-id`` would, and its folder judged."""
    from lab.cli.labs import backend_named, usable_backends
    from lab.report.summary import format_summary, regenerate
    from lab.run.cleanup import clean
    from lab.run.livestate import forget_live

    said = t("livecli.stale_down", name=state.name, run=state.run_id, pid=state.pid)
    print(said, file=sys.stderr)
    # Its own backend as it was configured (a swarm lab's engines file), whatever else is usable.
    backends = {**usable_backends(), state.backend: backend_named(state.backend, state.engines)}
    result = clean(backends, state.run_id, progress=progress_printer())
    for line in result.removed:
        print(t("livecli.removed", what=line))
    for line in result.problems:
        print(f"lab: {read_back(line)}", file=sys.stderr)
    if result.problems:
        return 1
    forget_live(state.run_id)
    out = Path(state.out)
    try:
        summary = regenerate(out)
    except LabError as exc:
        print(f"lab: {t('livecli.no_report', folder=out, error=exc.text())}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    print(t("livecli.report", path=out / "report.html"))
    return 0 if summary.passed else 1


def add_live_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_run_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = sub.add_parser("up", help="bring a topology up and leave it running (a live lab)")
    p.add_argument("file")
    p.add_argument("--name", help="the lab's name for later commands (default: the topology's)")
    add_run_options(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("exec", help="run a command on a live lab's node: [LAB] NODE -- CMD...")
    p.add_argument("-t", "--tty", action="store_true", help="with a terminal")
    p.add_argument("words", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("shell", help="an interactive shell on a live lab's node: [LAB] NODE")
    p.add_argument("words", nargs="+")
    p.set_defaults(func=cmd_shell)

    p = sub.add_parser("capture", help="a live pcap of a node's interface: [LAB] NODE [IFACE]")
    p.add_argument("words", nargs="+")
    p.add_argument("-w", dest="write", metavar="FILE", help="write to FILE, not stdout")
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser("snapshot", help="netstat, ss and ps on every node now: [LAB] [NAME]")
    p.add_argument("words", nargs="*")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("scenario", help="run one of the file's scenarios: [LAB] NAME")
    p.add_argument("words", nargs="+")
    p.set_defaults(func=cmd_scenario)

    p = sub.add_parser("down", help="take a live lab down: final snapshot, evidence, report")
    p.add_argument("lab", nargs="?")
    p.set_defaults(func=cmd_down)
