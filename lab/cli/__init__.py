"""The ``lab`` command: parse arguments, call the library, print. Nothing else lives here.

Exit codes: 0 success, 1 a failed run or check, 2 bad input, 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import lab
from lab.cli.engines import add_engines_option
from lab.cli.grade import add_grade_parser
from lab.cli.labs import cmd_clean, cmd_ls
from lab.cli.lang import LabParser, add_lang_everywhere, add_lang_option, lang_of
from lab.cli.live import add_live_commands
from lab.cli.livenetem import add_netem_command
from lab.cli.progress import progress_printer
from lab.cli.sshopts import add_host_key_options, with_host_keys
from lab.errors import Interrupted, LabError, read_back, read_back_all
from lab.i18n import choose_lang, msg, set_lang, t, translated

if TYPE_CHECKING:
    from lab.report.record import Summary


def cmd_validate(args: argparse.Namespace) -> int:
    from lab.spec.topology import load_topology

    topo = load_topology(Path(args.file))
    if args.json:
        print(json.dumps({"file": args.file, "valid": True, "problems": []}))
    else:
        counts = {"nodes": len(topo.nodes), "scenarios": len(topo.scenarios)}
        print(t("cli.valid", file=args.file, **counts))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from lab.spec.schema import topology_schema

    print(json.dumps(topology_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from lab.cli.engines import choose
    from lab.cli.preload import preload
    from lab.errors import UsageError
    from lab.run.outdir import claim_results_folder
    from lab.run.record import RUN_FILE
    from lab.run.runner import run_lab
    from lab.run.sealing import seal_results
    from lab.spec.topology import load_topology

    # The report's modules load while the lab waits on its clients (after the run's own:
    # no import of one module is then under way in both threads).
    loaded = preload("lab.report.summary")

    topology = load_topology(Path(args.file))
    # Bad input first, whatever the machine: a given --out is checked (not created) here.
    if args.out is not None:
        claim_results_folder(topology, args.out, create=False)
    backend_cls = with_host_keys(args, choose(args, _backend_name(args, topology)))
    mismatch = backend_cls.topology_problems(topology)
    if mismatch:
        said = msg("live.nothing_created", file=args.file, problems=read_back_all(mismatch))
        raise UsageError.said(said)
    given_existed = args.out is not None and Path(args.out).exists()
    out_dir = claim_results_folder(topology, args.out)
    say = progress_printer() if not args.quiet else (lambda _m: None)
    failure: BaseException | None = None
    # summary.json is written by the run itself as it ends, signals held back meanwhile.
    written: list[Summary] = []
    try:
        run_lab(
            topology,
            backend_cls,
            out_dir,
            progress=say,
            finish=lambda: written.append(_judge(loaded, out_dir, topology)),
            idle=loaded.start,
        )
    except (LabError, Interrupted) as exc:
        failure = exc
    loaded()
    from lab.report.summary import failure_line, finish_run, format_summary

    if not written and not (out_dir / RUN_FILE).is_file():
        # Stopped before it wrote anything (a build that failed): the folder this run
        # made for itself goes too, so that bad input leaves nothing.
        if not given_existed and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise failure or LabError(f"{out_dir}: the run left no {RUN_FILE}")
    if written:
        summary = written[-1]
    else:  # the run ended before it could judge itself: judged here, then sealed again
        summary = finish_run(out_dir, topology)
        seal_results(out_dir)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary))
    _print_teardown_errors(summary, failure)
    if failure is not None:
        raise failure
    line = failure_line(summary)
    if line is not None:
        print(f"lab: {line}", file=sys.stderr)
    return 0 if summary.passed else 1


def _judge(loaded: Callable[[], None], out_dir: Path, topology: Any) -> Summary:
    """summary.json for a finished run, once the report's modules are imported."""
    loaded()
    from lab.report.summary import finish_run

    return finish_run(out_dir, topology)


def _print_teardown_errors(summary: Summary, failure: BaseException | None) -> None:
    """What teardown could not do (and what to run about it, e.g. `lab clean --run-id`),
    on stderr: it is not only in run.json. The error that ends the run is printed by
    ``main``, so it is not repeated here."""
    said = str(failure) if failure is not None else None
    for error in summary.teardown_errors:
        if said and str(error).endswith(said):
            continue
        print(f"lab: teardown: {error}", file=sys.stderr)


def _backend_name(args: argparse.Namespace, topology: Any) -> str:
    """``auto`` means ssh for a topology of existing hosts (nodes with ssh targets)."""
    if args.backend == "auto" and any(n.ssh is not None for n in topology.nodes):
        return "ssh"
    return str(args.backend)


def cmd_experiment(args: argparse.Namespace) -> int:
    """`lab experiment NAME` is `lab run topologies/experiments/NAME.yaml`; with `--impl c`,
    `topologies/experiments/c/NAME.yaml` (the same scenarios and claims with the course's C
    programs). A spot-the-bug experiment (`bug-*`) runs the C variants only."""
    from lab.data import experiment_file, experiment_impls, experiment_names
    from lab.errors import UsageError
    from lab.spec.topology import load_topology

    names = experiment_names()
    if args.list or not args.name:
        for name in names:
            impls = ",".join(experiment_impls(name))
            file = experiment_file(name, None)
            assert file is not None
            topo = load_topology(file)
            print(f"{name:18} {impls:9} {translated(f'description.{topo.name}', topo.description)}")
        return 0
    if args.name not in names:
        raise UsageError.said(msg("experiment.none", name=args.name, names=", ".join(names)))
    file = experiment_file(args.name, args.impl)
    if file is None:
        have = [n for n in names if args.impl in experiment_impls(n)]
        impls = ", ".join(experiment_impls(args.name))
        said = msg(
            "experiment.no_impl", name=args.name, impl=args.impl, impls=impls, have=", ".join(have)
        )
        raise UsageError.said(said)
    args.file = str(file)
    return cmd_run(args)


def cmd_report(args: argparse.Namespace) -> int:
    from lab.report.summary import regenerate

    summary = regenerate(Path(args.dir))
    if args.json:
        print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
    else:
        from lab.report.summary import format_summary

        print(format_summary(summary))
    return 0 if summary.passed else 1


def cmd_compose(args: argparse.Namespace) -> int:
    from lab.deploy.compose import compose_text
    from lab.spec.topology import load_topology

    sys.stdout.write(compose_text(load_topology(Path(args.file)), args.image))
    return 0


def cmd_images_build(args: argparse.Namespace) -> int:
    from lab.deploy.images import build_images, image_info

    ref = build_images(offline=True if args.offline else None, progress=progress_printer())
    info = image_info(ref)
    if args.json:
        print(json.dumps({"image": ref, "size": info.get("size")}))
    else:
        print(f"{ref}  {int(info.get('size') or 0) / 2**20:.0f} MiB")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """A folder of the shipped topologies and experiments, for a user to edit and run.
    An existing folder with anything in it is refused rather than mixed into."""
    from lab.data import copy_topologies
    from lab.errors import UsageError

    dest = Path(args.dir)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest}: exists and is not an empty folder; give a new or empty one")
    copies = copy_topologies(dest)
    print(t("cli.init_done", folder=dest, count=len(copies), default=dest / "default.yaml"))
    return 0


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="auto", choices=["auto", "netns", "docker", "ssh", "swarm"])
    add_host_key_options(p)
    add_engines_option(p)
    p.add_argument("--out", help="results folder (default results/<topology>-<UTC time>)")
    p.add_argument("--json", action="store_true", help="print summary.json instead of tables")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_lang_option(p)


def build_parser() -> argparse.ArgumentParser:
    parser = LabParser(
        prog="lab", description="socket-lab: run the course's socket programs on real networks."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"socket-lab {lab.__version__}")
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True),
    )

    p = sub.add_parser("run", help="bring a topology up, run it, check it, tear it down")
    p.add_argument("file", help="topology file, e.g. topologies/default.yaml")
    add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("experiment", help="run one of the course's experiments (--list)")
    p.add_argument("name", nargs="?", help="e.g. handshake, close, fork, routing")
    p.add_argument("--list", action="store_true", help="list the experiments")
    p.add_argument(
        "--impl",
        choices=["python", "c"],
        help="run the lab's Python programs (the default) or the course's C twins",
    )
    add_run_options(p)
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("validate", help="check a topology file; every problem at once")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print a JSON Schema of topology files, for editors")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("report", help="judge a results folder again and rewrite its report")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true")
    add_lang_option(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "clean", help="remove what killed runs left (never a running lab's), and nothing else"
    )
    p.add_argument("--run-id", help="only this run's objects")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --run-id: stop and remove that run even though it is running "
        "(its evidence so far is kept)",
    )
    p.add_argument("--json", action="store_true")
    add_engines_option(p)
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("compose", help="print a compose file that runs a topology live")
    p.add_argument("file")
    p.add_argument("--image", default="socket-lab-node:latest", help="node image reference")
    p.set_defaults(func=cmd_compose)

    p = sub.add_parser("images", help="the node images")
    images = p.add_subparsers(dest="images_command", required=True)
    p = images.add_parser("build", help="build the node image (offline fallback: debootstrap)")
    p.add_argument("--offline", action="store_true", help="build the base with debootstrap")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_images_build)

    p = sub.add_parser("init", help="copy the example topologies and experiments into DIR")
    p.add_argument("dir")
    p.set_defaults(func=cmd_init)

    add_grade_parser(sub)

    p = sub.add_parser("ls", help="list running labs")
    p.add_argument("--json", action="store_true")
    add_engines_option(p)
    p.set_defaults(func=cmd_ls)

    add_live_commands(sub, add_run_options)
    add_netem_command(sub)
    add_lang_everywhere(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    set_lang(lang_of(words, os.environ))  # argparse's refusals are in it too
    parser = build_parser()
    args = parser.parse_args(words)
    set_lang(choose_lang(getattr(args, "lang", None), os.environ))
    try:
        code: int = args.func(args)
        return code
    except Interrupted as exc:
        print(f"lab: {read_back(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"lab: {t('cli.interrupted')}", file=sys.stderr)
        return 130
    except LabError as exc:
        if args.debug:
            traceback.print_exc()
        _print_error(exc)
        return exc.exit_code


def entry() -> None:
    """The ``lab`` program: ``main``, then out at once. When ``main`` returns, everything
    the command made is torn down and every file it wrote is closed; the interpreter's own
    finalization (freeing each module and object of a run, some 30 ms on two cores) has
    nothing left to do, so only the terminal's streams are flushed first."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away
            stream.flush()
    os._exit(code)


def _print_error(exc: LabError) -> None:
    from lab.errors import TopologyError

    if isinstance(exc, TopologyError):
        for problem in exc.lines():
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        key = "cli.problems.one" if count == 1 else "cli.problems.many"
        print(f"lab: {t(key, count=count)}", file=sys.stderr)
    else:
        print(f"lab: {exc.text()}", file=sys.stderr)
