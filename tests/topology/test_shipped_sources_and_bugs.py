"""``lab:PATH`` sources (the lab's own C programs, from any folder), the ``bug`` key of the
spot-the-bug experiments and ``server_closes_after``: read, refused with located messages,
and judged (a check the bug should fail is inverted, never on damaged evidence)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.spec.model import Bug
from lab.spec.programs import SHIPPED_DIR
from lab.spec.topology import load_topology, load_topology_text
from lab.verdict.bugs import as_bug, judged
from lab.verdict.check import Check

HEAD = """\
name: t
networks: {lan: {subnet: 10.77.199.0/24}}
nodes:
  s: {interfaces: {lan: 10.77.199.10}}
  c: {interfaces: {lan: 10.77.199.11}}
"""

SHIPPED = (
    HEAD
    + """\
programs:
  srv: {sources: [lab:c/fork_server.c, lab:c/serve.c, lab:c/serve.h, lab:c/wrap.c, lab:c/wrap.h]}
services:
  echo: {node: s, program: srv, port: 9999}
scenarios:
  - {name: x, service: echo, clients: [c], send: [a], expect: [A]}
"""
)


def _problems(text: str, base: Path) -> list[str]:
    path = base / "t.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    return info.value.problems


def test_lab_sources_are_the_shipped_files_wherever_the_topology_is(tmp_path: Path) -> None:
    path = tmp_path / "anywhere" / "t.yaml"
    path.parent.mkdir()
    path.write_text(SHIPPED)
    (program,) = load_topology(path).programs
    assert program.sources[0] == SHIPPED_DIR / "c" / "fork_server.c"
    assert program.written[0] == "lab:c/fork_server.c"
    assert program.build[0] == "cc" and program.build[-3:] == ("fork_server.c", "serve.c", "wrap.c")


def test_lab_sources_missing_or_outside_the_lab_are_refused_located(tmp_path: Path) -> None:
    (tmp_path / "secret.c").write_text("int x;\n")
    text = SHIPPED.replace("lab:c/serve.c", "lab:c/nope.c").replace(
        "lab:c/wrap.c", "lab:../../secret.c"
    )
    text = text.replace("lab:c/serve.h", "'lab:'")
    problems = _problems(text, tmp_path)
    assert len(problems) == 3, problems
    assert problems[0].startswith(
        f"{tmp_path}/t.yaml:7: programs.srv.sources[1]: no such file among the lab's programs ("
    )
    assert "programs.srv.sources[2]: 'lab:' must name a file or folder inside" in problems[1]
    assert (
        "programs.srv.sources[3]: 'lab:../../secret.c' must name a file or folder inside"
        in (problems[2])
    )


BUGGY = (
    HEAD
    + """\
services:
  echo: {node: s, program: fork_server}
scenarios:
  - name: x
    service: echo
    clients: [c]
    send: [a, b]
    expect: [A, B]
    claims: [handshake]
    server_closes_after: SCA
    bug:
      what: WHAT
      caught_by: CAUGHT
"""
)


def _bug_text(what: str = "it breaks", caught: str = "[handshake, replies]", sca: str = "1") -> str:
    return BUGGY.replace("WHAT", what).replace("CAUGHT", caught).replace("SCA", sca)


def test_bug_reaches_the_model() -> None:
    (sc,) = load_topology_text(_bug_text(), "t.yaml").scenarios
    assert sc.bug == Bug("it breaks", ("handshake", "replies"))
    assert sc.server_closes_after == 1
    assert sc.expected_replies == ("A",)


def test_bug_and_closes_after_problems_are_located_all_at_once() -> None:
    text = _bug_text(what="' '", caught="[handshak, replies, replies, children-reaped]", sca="2")
    with pytest.raises(TopologyError) as info:
        load_topology_text(text, "t.yaml")
    assert info.value.problems == [
        "t.yaml:15: scenarios[0].server_closes_after: 2 replies before the close, but only 2 "
        "lines are sent: the server would never close early",
        "t.yaml:17: scenarios[0].bug.what: say what the bug is",
        "t.yaml:18: scenarios[0].bug.caught_by[0]: 'handshak' is neither a claim of this "
        "scenario nor a built-in check (did you mean 'handshake'?); here: handshake, replies, "
        "service-ran",
        "t.yaml:18: scenarios[0].bug.caught_by[2]: 'replies' is listed twice",
        "t.yaml:18: scenarios[0].bug.caught_by[3]: 'children-reaped' is neither a claim of this "
        "scenario nor a built-in check; here: handshake, replies, service-ran",
    ]


def test_a_check_the_bug_should_fail_passes_when_it_fails_and_fails_when_it_holds() -> None:
    bug = Bug("the key is empty", ("utf8-on-wire",))
    caught = as_bug(Check("UTF-8 on the wire", False, "server sent b'\\n'"), bug)
    assert caught == Check(
        "UTF-8 on the wire (bug)",
        True,
        "fails as expected, this is the bug: the key is empty; server sent b'\\n'",
    )
    missed = as_bug(Check("UTF-8 on the wire", True, "你好 = e4 bd a0"), bug)
    assert not missed.passed and "the bug did not show" in missed.detail
    # A check the bug does not name is left as it is.
    plain = Check("replies", False, "0/1")
    assert judged(plain, bug, "replies") is plain
    assert judged(plain, None, "replies") is plain


def test_a_race_passes_either_way_and_says_which() -> None:
    bug = Bug("handler after the first fork", ("children-reaped",), race=("children-reaped",))
    lost = judged(
        Check("children reaped", False, "1 zombie children of pid 7"), bug, "children-reaped"
    )
    won = judged(
        Check("children reaped", True, "0 zombie children of pid 7"), bug, "children-reaped"
    )
    assert lost.passed and "the race was lost this run" in lost.detail and "pid 7" in lost.detail
    assert won.passed and "the race was won this run" in won.detail


def test_no_traffic_at_all_never_passes_as_the_bug_shown() -> None:
    """A claim that found none of the scenario's connections shows nothing: not the bug."""
    bug = Bug("the client never sees the close", ("early-close-noticed",))
    empty = Check(
        "early close noticed",
        False,
        "no TCP connections of the scenario to closer (port 9000) in the captures of server "
        "(client ports [])",
    )
    judged_empty = as_bug(empty, bug)
    assert judged_empty.name == "early close noticed (bug)" and not judged_empty.passed
    assert judged_empty.detail.startswith("nothing to show the bug by: no TCP connections")
