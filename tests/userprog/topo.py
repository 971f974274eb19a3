"""Topologies with the user's own programs, written into a test's folder with the student
fixtures beside them (``student/``), so that sources are given relative to the file."""

from __future__ import annotations

import shutil
from pathlib import Path

STUDENT = Path(__file__).resolve().parents[1] / "fixtures" / "student"

HEAD = """\
name: {name}
networks:
  lan: {{subnet: 10.77.{net}.0/24}}
nodes:
  server: {{interfaces: {{lan: 10.77.{net}.10}}}}
  c1: {{interfaces: {{lan: 10.77.{net}.11}}}}
  c2: {{interfaces: {{lan: 10.77.{net}.12}}}}
"""


def student_dir(tmp_path: Path) -> Path:
    """A copy of the student fixtures in the test's folder."""
    target = tmp_path / "student"
    if not target.exists():
        shutil.copytree(STUDENT, target)
    return target


def write(tmp_path: Path, body: str, name: str = "student", net: int = 9) -> Path:
    """A topology file: the common networks and nodes, then ``body`` (programs, services,
    scenarios), in ``tmp_path`` beside a copy of the fixtures."""
    student_dir(tmp_path)
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEAD.format(name=name, net=net) + body)
    return path
