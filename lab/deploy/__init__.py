"""Putting the lab where it runs: node images and compose files."""
