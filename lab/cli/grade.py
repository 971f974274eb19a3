"""``lab grade``: one submission, or a folder of them (a class), as servers of a standard
lab; the table, grade.json/grade.html, --junit and --json. Exit 0 only if every claim of
every submission passes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from lab.cli.lang import add_lang_option
from lab.cli.progress import progress_printer
from lab.cli.sshopts import add_host_key_options, with_host_keys
from lab.errors import UsageError
from lab.i18n import current_lang, msg, t

if TYPE_CHECKING:
    from lab.grade.hosts import Hosts

DEFAULT_TIME_LIMIT = 600.0  # seconds per submission of a class


def add_grade_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from lab.grade.submission import MODELS

    p = sub.add_parser(
        "grade", help="grade a server submission (files or a folder), or a class folder"
    )
    p.add_argument("path", nargs="+", help="source file(s), a folder, or a folder of folders")
    p.add_argument("--as", dest="model", required=True, choices=MODELS, help="the server's design")
    p.add_argument("--port", type=int, help="the port it listens on (default: the model's)")
    p.add_argument(
        "--backend",
        choices=["netns", "docker", "ssh"],
        help="where the lab runs (default: ssh with --hosts, else netns)",
    )
    p.add_argument(
        "--hosts",
        metavar="FILE",
        help="ssh: a topology file whose nodes server, c1, c2, c3 are machines with ssh targets",
    )
    add_host_key_options(p)
    p.add_argument("--weights", help="JSON file of points per claim, over the defaults")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML: one testcase per claim")
    p.add_argument("--out", help="results folder (default results/grade-<name>-<UTC time>)")
    p.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        help=f"class: seconds per submission (default {DEFAULT_TIME_LIMIT:g})",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="class: grade N submissions at once, each still in its own run (default 1)",
    )
    p.add_argument("--json", action="store_true", help="print the grade(s) as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_lang_option(p)
    p.set_defaults(func=cmd_grade)


def cmd_grade(args: argparse.Namespace) -> int:
    from lab.grade.classroom import is_class_folder
    from lab.grade.submission import DEFAULT_PORTS
    from lab.grade.weights import read_weights

    port = args.port if args.port is not None else DEFAULT_PORTS[args.model]
    if not 1 <= port <= 65535:
        raise UsageError.said(msg("grade.flag.port", port=port))
    if args.jobs < 1:
        raise UsageError.said(msg("grade.flag.jobs", jobs=args.jobs))
    if args.time_limit <= 0:
        raise UsageError.said(msg("grade.flag.time_limit", limit=args.time_limit))
    weights_path = Path(args.weights) if args.weights else None
    weights = read_weights(weights_path)  # a bad file is refused before anything runs
    paths = [Path(p) for p in args.path]
    if args.junit and Path(args.junit).is_dir():
        raise UsageError.said(msg("grade.flag.junit_folder", junit=args.junit))
    hosts = _hosts(args)
    if len(paths) == 1 and is_class_folder(paths[0]):
        return _grade_class(args, paths[0], port, weights_path, hosts)
    return _grade_single(args, paths, port, weights, hosts)


def _hosts(args: argparse.Namespace) -> Hosts | None:
    """The machines of ``--hosts`` for the ssh backend (read and checked: exit 2 when
    unfit), None for the others; ``args.backend`` settled."""
    from lab.grade.hosts import read_hosts

    if args.backend is None:
        args.backend = "ssh" if args.hosts else "netns"
    if args.backend != "ssh":
        ssh_only = {
            "--hosts": args.hosts,
            "--known-hosts": args.known_hosts,
            "--accept-new-host-keys": args.accept_new_host_keys,
        }
        given = [option for option, value in ssh_only.items() if value]
        if given:
            raise UsageError.said(msg("grade.flag.ssh_only", flag=given[0], backend=args.backend))
        return None
    if not args.hosts:
        raise UsageError.said(msg("grade.flag.needs_hosts"))
    return read_hosts(Path(args.hosts))


def _grade_single(
    args: argparse.Namespace, paths: list[Path], port: int, weights: object, hosts: Hosts | None
) -> int:
    import time

    from lab.grade.grade import grade_one
    from lab.grade.hosts import on_hosts, refuse_unfit
    from lab.grade.output import grade_table, junit_xml
    from lab.grade.submission import grading_topology, read_submission
    from lab.grade.weights import Weights
    from lab.run.backends import choose_backend

    assert isinstance(weights, Weights)
    sub = read_submission(paths)
    backend_cls = with_host_keys(args, choose_backend(args.backend))
    if hosts is not None:  # before the results folder: unfit hosts are bad input
        if args.out is not None:
            _results_folder(args.out, create=False)
        topology = on_hosts(grading_topology(sub, args.model, port), hosts)
        refuse_unfit(topology, backend_cls, str(hosts.source))
    if args.out is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        args.out = str(Path("results") / f"grade-{sub.name}-{stamp}")
    out_dir = _results_folder(args.out)
    say = progress_printer() if not args.quiet else (lambda _m: None)
    grade = grade_one(sub, args.model, port, backend_cls, out_dir, weights, say, hosts)
    if args.junit:
        Path(args.junit).write_text(junit_xml([grade]), encoding="utf-8")
    if args.json:
        print(json.dumps(grade.to_json(), indent=2, ensure_ascii=False))
    else:
        print(grade_table(grade))
    return 0 if grade.passed else 1


def _results_folder(out: str, *, create: bool = True) -> Path:
    """The results folder, new or empty (``--out`` never overwrites evidence); with
    ``create`` False only checked."""
    from lab.run.outdir import claim_results_folder
    from lab.spec.model import Topology

    return claim_results_folder(Topology("grade", (), ()), out, create=create)


def _grade_class(
    args: argparse.Namespace, folder: Path, port: int, weights: Path | None, hosts: Hosts | None
) -> int:
    import sys
    import time

    from lab.grade.classroom import grade_class
    from lab.grade.output import junit_xml

    if args.out is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        args.out = str(Path("results") / f"grade-{folder.resolve().name}-{stamp}")
    options = ["--as", args.model, "--port", str(port), "--backend", args.backend]
    options += ["--lang", current_lang()]  # each submission's pages in the class's language
    if weights is not None:
        options += ["--weights", str(weights.resolve())]
    if hosts is not None:  # before the results folder: unfit hosts are bad input
        _results_folder(args.out, create=False)
        options += _class_on_hosts(args, folder, port, hosts)
    out_dir = _results_folder(args.out)
    say = progress_printer() if not args.quiet else (lambda _m: None)
    grades = grade_class(folder, out_dir, options, args.time_limit, say, args.jobs)
    if args.junit:
        Path(args.junit).write_text(junit_xml(grades), encoding="utf-8")
    if args.json:
        print(json.dumps([g.to_json() for g in grades], indent=2, ensure_ascii=False))
    else:
        from lab.grade.output import class_table

        print(class_table(grades))
        print("\n" + t("grade.class_files", folder=out_dir), file=sys.stdout)
    return 0 if all(g.passed for g in grades) else 1


def _class_on_hosts(args: argparse.Namespace, folder: Path, port: int, hosts: Hosts) -> list[str]:
    """A class over ssh: one submission at a time (every one runs on the same machines:
    two at once would share the graded port, the captures and the CPUs), the hosts
    checked once for every language the class uses; the options each ``lab grade`` of
    the class is given to reach them."""
    from lab.grade.classroom import class_preflight
    from lab.run.backends import choose_backend

    if args.jobs > 1:
        raise UsageError.said(msg("grade.flag.jobs_ssh", jobs=args.jobs))
    backend_cls = with_host_keys(args, choose_backend("ssh"))
    class_preflight(folder, args.model, port, hosts, backend_cls)
    options = ["--hosts", str(hosts.source.resolve())]
    if args.known_hosts:
        options += ["--known-hosts", str(Path(args.known_hosts).resolve())]
    return options  # new keys were recorded by the pre-flight: known to every submission
