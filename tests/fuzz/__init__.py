"""Coverage-guided fuzz targets (atheris, libFuzzer) for the parsers that read untrusted
files: topology files, captures, snapshots. Each ``fuzz_*.py`` module here is a target:

    python3 -m tests.fuzz.fuzz_NAME -max_total_time=600     # longer, by hand

``test_fuzz.py`` runs every target for a bounded time (``SOCKET_LAB_FUZZ_SECONDS``, 60 by
default) from its seed corpus. A target fails on any exception other than the lab's own
located error (``lab.errors.LabError``).
"""
