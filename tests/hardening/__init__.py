"""The hostile-client tier: every server of lab/programs on one network namespace, the
product's corpus of misbehaving clients (lab/programs/hostile_corpus.py) on another, and
after each case the checks of ``conftest.Running.survives``: still answering, no zombie,
no leaked descriptor, memory bounded. ``test_descriptor_limit`` runs the TCP servers out
of descriptors; ``test_controls`` shows the checks fail on servers that are broken on purpose."""
