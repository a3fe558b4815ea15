"""Helpers shared by test modules (imported as `helpers`; fixtures live in conftest.py)."""
from __future__ import annotations


def frames(run):
    """A Run as the (results, samples, env) triple older tests unpack."""
    return run.results, run.samples, dict(run.env)
