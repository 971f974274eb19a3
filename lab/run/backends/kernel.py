"""What the running kernel can do for impairments, found by trying it, not by reading its
configuration (which may be absent, and says nothing of modules that cannot be loaded)."""

from __future__ import annotations

import functools
import shutil
import subprocess


@functools.cache
def kernel_has_netem() -> bool:
    """Whether a netem qdisc can be made: tried on the loopback of a throwaway network
    namespace (``unshare --net``), gone when the probe exits. Needs root; a probe that
    cannot run at all answers True, so that tc itself reports what is wrong later."""
    if shutil.which("unshare") is None or shutil.which("tc") is None:
        return True
    argv = ["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return True
    return done.returncode == 0 or "unknown" not in done.stderr.lower()
