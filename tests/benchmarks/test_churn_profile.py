"""The churn profile's reading of ``perf script`` output and its categories."""

from __future__ import annotations

import os

import pytest

from tests.benchmarks.bench_churn_profile import (
    FAULT_PERIOD,
    FREQUENCY,
    PerfSample,
    category,
    parse_perf_script,
    profile,
)

# As `perf script -F comm,pid,event,ip,sym,dso` prints a recording of cpu-clock with call
# chains and page-faults without: indented headers, tab-indented frames, blank lines.
SCRIPT = """\
         python3  6917 cpu-clock/freq=999,call-graph=fp/:
\tffffffff8161116f exit_mmap ([kernel.kallsyms])
\tffffffff81367034 do_exit ([kernel.kallsyms])
\tffffffff8223c951 do_syscall_64 ([kernel.kallsyms])

         python3  6142 cpu-clock/freq=999,call-graph=fp/:
\t          1af851 _PyObject_Malloc (/usr/lib/libpython3.11.so.1.0)

         python3  6142 page-faults/period=1,call-graph=no/:  7f0c22c44270 @plt (/usr/lib/libc.so.6)
   loadgen_epoll  7001 page-faults/period=1,call-graph=no/:  55ba71b1b43d main (/tmp/lg)
         python3  6142 cpu-clock/freq=999,call-graph=fp/:
\tffffffff81600eff do_wp_page ([kernel.kallsyms])
\tffffffff81000c82 asm_exc_page_fault ([kernel.kallsyms])
\t          26f533 _PyFrame_Push (/usr/lib/libpython3.11.so.1.0)
"""


def test_parse_reads_headers_frames_and_single_frame_samples() -> None:
    samples = list(parse_perf_script(SCRIPT.splitlines()))
    assert [(s.comm, s.pid, s.event) for s in samples] == [
        ("python3", 6917, "cpu-clock"),
        ("python3", 6142, "cpu-clock"),
        ("python3", 6142, "page-faults"),
        ("loadgen_epoll", 7001, "page-faults"),
        ("python3", 6142, "cpu-clock"),
    ]
    assert samples[0].frames[1] == ("do_exit", "[kernel.kallsyms]")
    assert samples[2].frames == (("@plt", "/usr/lib/libc.so.6"),)
    assert len(samples[4].frames) == 3  # the last sample ends at the end of the input


@pytest.mark.parametrize(
    ("functions", "expected"),
    [
        # A fault inside the interpreter is the fault's, not the interpreter's.
        (["do_wp_page", "asm_exc_page_fault", "_PyFrame_Push"], "page faults"),
        (["exit_mmap", "do_exit", "do_syscall_64"], "exit"),
        (["dup_mmap", "copy_process", "kernel_clone", "do_syscall_64"], "fork"),
        (["schedule_tail", "ret_from_fork"], "fork"),
        (["tcp_sendmsg", "do_syscall_64"], "system calls"),
        (["net_rx_action", "__do_softirq"], "other"),
        ([], "other"),
    ],
)
def test_category_is_the_first_of_the_list_in_the_chain(
    functions: list[str], expected: str
) -> None:
    assert category(tuple((f, "[kernel.kallsyms]") for f in functions)) == expected


def test_category_of_a_sample_in_libpython_is_the_interpreter() -> None:
    assert category((("_PyEval_EvalFrameDefault", "/x/libpython3.11.so.1.0"),)) == "interpreter"
    assert category((("malloc", "/usr/lib/libc.so.6"),)) == "other"


def test_profile_counts_only_the_servers_processes_per_connection() -> None:
    cpu = ("cpu-clock", (("_PyObject_Malloc", "libpython3.11.so"),))
    fault = ("page-faults", (("main", "x"),))
    samples = [
        *(PerfSample("python3", 100, *cpu) for _ in range(FREQUENCY)),  # one CPU-second
        *(PerfSample("python3", 100, *fault) for _ in range(3)),  # the first process
        *(PerfSample("python3", 101, *fault) for _ in range(9)),  # a child
        PerfSample("loadgen_epoll", 7, *cpu),  # another command: not the server's
        PerfSample("python3", os.getpid(), *cpu),  # the benchmark itself
    ]
    found = profile(samples, "python3", 100, rate=5.0, window=2.0)  # 10 connections
    assert found.connections_per_s == 5.0
    assert found.cpu_us["interpreter"] == pytest.approx(100_000.0)
    assert sum(found.cpu_us.values()) == pytest.approx(100_000.0)
    # Each fault recorded stands for FAULT_PERIOD of them.
    assert (found.faults_first, found.faults_others) == (0.3 * FAULT_PERIOD, 0.9 * FAULT_PERIOD)
