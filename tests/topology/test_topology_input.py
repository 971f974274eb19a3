"""What the reader is handed: only a bounded amount of a regular file or a pipe is read,
anything else (a device, a folder, a FIFO nobody writes) is one located problem, and the
bytes PyYAML refuses are located problems, never a traceback."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from lab.errors import TopologyError
from lab.spec.filebytes import MAX_FILE_BYTES
from lab.spec.topology import load_topology_text, validate_file

GOOD = Path(__file__).resolve().parents[2] / "topologies" / "default.yaml"


def test_a_device_is_refused_without_reading_it() -> None:
    (problem,) = validate_file(Path("/dev/zero"))
    assert problem.startswith("/dev/zero:1: (document): ")
    assert "not a regular file" in problem and "character device" in problem


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (problem,) = validate_file(tmp_path)
    assert problem.startswith(f"{tmp_path}:1: (document): ")
    assert "folder" in problem


def test_a_fifo_nobody_writes_is_refused_after_a_bounded_wait(tmp_path: Path) -> None:
    fifo = tmp_path / "topo.yaml"
    os.mkfifo(fifo)
    (problem,) = validate_file(fifo)
    assert problem.startswith(f"{fifo}:1: (document): ")
    assert "no data" in problem


def _endless_writer(fd: int) -> None:
    try:
        while True:
            os.write(fd, b"x: y\n" * 4096)
    except OSError:  # the reader closed its end: EPIPE
        pass
    finally:
        os.close(fd)


def test_an_endless_pipe_is_read_only_up_to_the_limit() -> None:
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=_endless_writer, args=(write_end,), daemon=True)
    writer.start()
    path = Path(f"/proc/self/fd/{read_end}")
    try:
        (problem,) = validate_file(path)
    finally:
        os.close(read_end)
    writer.join(timeout=30)
    assert f"larger than {MAX_FILE_BYTES} bytes" in problem
    assert not writer.is_alive()


def test_a_pipe_holding_a_good_topology_is_read(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    data = GOOD.read_bytes()

    def write() -> None:
        os.write(write_end, data)
        os.close(write_end)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        assert validate_file(Path(f"/proc/self/fd/{read_end}")) == []
    finally:
        os.close(read_end)
        writer.join(timeout=30)


@pytest.mark.parametrize("char", ["\x00", "\x1d", "\x7f", "\ufffe", "\udc80"])
def test_a_character_yaml_refuses_is_a_located_problem(char: str) -> None:
    text = f"name: t\n# a comment\ndescription: a{char}b\n"
    with pytest.raises(TopologyError) as caught:
        load_topology_text(text, "t.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("t.yaml:3: (document): ")
    assert f"#x{ord(char):04x}" in problem


def test_a_control_character_in_a_file_is_a_located_problem(tmp_path: Path) -> None:
    path = tmp_path / "ctl.yaml"
    path.write_bytes(b"name: t\nnetworks: {}\nnodes:\x1d {}\n")
    (problem,) = validate_file(path)
    assert problem.startswith(f"{path}:3: (document): ")


def test_nesting_too_deep_is_located_where_it_goes_too_deep() -> None:
    text = "name: deep\nnetworks: {}\nnodes:\n  a: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(TopologyError) as caught:
        load_topology_text(text, "deep.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("deep.yaml:4: (document): ")
    assert "nested too deeply" in problem


def test_nesting_too_deep_over_many_lines_points_at_the_line_past_the_limit() -> None:
    lines = ["name: deep", "nodes:"] + [" " * (2 * k) + f"- k{k}:" for k in range(1, 400)]
    with pytest.raises(TopologyError) as caught:
        load_topology_text("\n".join(lines) + "\n", "deep.yaml")
    (problem,) = caught.value.problems
    line = int(problem.split(":")[1])
    assert 3 < line < 400, problem
    assert "nested too deeply" in problem


@pytest.mark.parametrize(
    "value", ["9" * 5000, "1:" * 20000 + "1", "-" + "9" * 5000, "0x" + "f" * 5000]
)
def test_an_integer_too_long_for_any_range_is_out_of_range_not_a_crash(value: str) -> None:
    text = GOOD.read_text().replace("snaplen: 262144", f"snaplen: {value}")
    with pytest.raises(TopologyError) as caught:
        load_topology_text(text, "t.yaml")
    (problem,) = caught.value.problems
    assert ": capture.snaplen: " in problem and "is out of range" in problem
    assert len(problem) < 200, problem
