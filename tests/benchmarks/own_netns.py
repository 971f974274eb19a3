"""Run a loopback benchmark in a network namespace of its own.

On the host, a churn column opens thousands of connections a second, and netfilter's
connection tracking (loaded on any machine that runs Docker) keeps each for 120 s after it
closes. Its table (262,144 entries here) fills within a few minutes of churn, and from
then on the kernel drops new connections' SYNs ("nf_conntrack: table full, dropping
packet" in dmesg): the clients wait a second for the retransmission, and a run that meets
that does a tenth of its connections or none. Which run meets it depends on the last two
minutes of every earlier run, not on the server measured. A namespace made for the
benchmark has no firewall rules, so no tracking, no TIME_WAIT sockets of other runs, and
a loopback of its own; it ends with the benchmark's process, leaving nothing to clean up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.labcli import ROOT

MARK = "SOCKET_LAB_BENCH_OWN_NETNS"  # set in the re-run: do not unshare again


def rerun_in_own_netns(module: str) -> None:
    """Run ``python3 -m module`` with this process's arguments again in a new network
    namespace (``unshare --net``), and exit with its status. Returns at once when already
    in it (after bringing its loopback up), or when that needs what is missing (root,
    ``unshare``): the benchmark then runs on the host's loopback, and says so."""
    if os.environ.get(MARK):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
        return
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print(
            "note: not root (or no unshare): running on the host's loopback, where "
            "connection tracking can drop a churn run's SYNs",
            file=sys.stderr,
        )
        return
    argv = ["unshare", "--net", "--", sys.executable, "-m", module, *sys.argv[1:]]
    with subprocess.Popen(argv, cwd=ROOT, env={**os.environ, MARK: "1"}) as child:
        while True:
            try:
                sys.exit(child.wait())
            except KeyboardInterrupt:
                # The child had the same Ctrl-C and stops its servers: wait for that,
                # rather than kill it and leave them running.
                continue


def where() -> str:
    """How the benchmark's header names its network."""
    return "loopback of its own network namespace" if os.environ.get(MARK) else "loopback"
