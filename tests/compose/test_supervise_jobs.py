"""lab.programs.supervise's job grammar: the words a node's jobs travel in, read back."""

from __future__ import annotations

import pytest

from lab.programs.supervise import SuperviseError, job_words, parse_jobs, split_argv


def test_jobs_round_trip_any_argument_literally() -> None:
    tricky = ["--", "client", "serve", "3", "", "-- --", "你好"]
    words = job_words("serve", "s", ["prog", *tricky]) + job_words("client", "c", tricky)
    jobs = parse_jobs(words)
    assert [(j.kind, j.name, list(j.argv)) for j in jobs] == [
        ("serve", "s", ["prog", *tricky]),
        ("client", "c", tricky),
    ]


def test_options_end_at_the_first_double_dash() -> None:
    options, jobs = split_argv(["--node", "n", "--", "client", "c", "1", "--"])
    assert options == ["--node", "n"]
    assert jobs == ["client", "c", "1", "--"]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["serve", "s"], "incomplete job"),
        (["run", "s", "1", "x"], "serve or client"),
        (["serve", "s", "0"], "positive integer"),
        (["serve", "s", "x", "y"], "positive integer"),
        (["serve", "s", "3", "a", "b"], "fewer given"),
        (["serve", "../s", "1", "a"], "bad job name"),
        (["serve", "s", "1", "a", "client", "s", "1", "b"], "unique"),
    ],
)
def test_bad_job_lists_are_refused(words: list[str], message: str) -> None:
    with pytest.raises(SuperviseError, match=message):
        parse_jobs(words)
