"""Judging the evidence: the built-in checks and the experiments' claims."""
