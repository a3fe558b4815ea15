"""Helpers shared by test modules (imported as `helpers`; fixtures live in conftest.py)."""
from __future__ import annotations


class RecordWriter:
    """A RunWriter fed one Record at a time (as bench.api.execute feeds it): frames rebuilt after each record."""

    def __init__(self, run_dir, env):
        from bench.store.writer import RunWriter

        self._writer = RunWriter(run_dir, env)
        self.run_dir = run_dir
        self.records = []

    @property
    def env(self):
        return self._writer.env

    def add(self, record):
        from bench.store.frames import to_frame, to_samples

        self.records.append(record)
        self._writer.update(to_frame(self.records), to_samples(self.records))

    def finish(self, **kwargs):
        return self._writer.finish(**kwargs)


def frames(run):
    """A Run as the (results, samples, env) triple older tests unpack."""
    return run.results, run.samples, dict(run.env)
