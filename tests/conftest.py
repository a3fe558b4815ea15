"""Shared fixtures: the repository root, temporary config files, one-line error checks, CUDA skipping."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

# Rows are measured in this process unless a test asks for worker processes (tests/test_workers.py does, with real
# subprocesses): a worker costs an interpreter start and a torch import, seconds each, hundreds of times over.
# Set here, at import, so that the CLI run in a subprocess by a test inherits it too.
os.environ["BENCH_PROCESSES"] = "0"
# Runs keep no history (the default store is results/history.sqlite under the working directory, which is the
# repository for some tests); tests/test_history.py names its stores or clears this.
os.environ["BENCH_STORE"] = "none"
# A fixed reading of the cores other processes keep busy: no half-second look at /proc/stat per run, and the same
# thread count whoever else is using this machine (tests/test_headline.py tests the choice itself).
os.environ["BENCH_BUSY_CORES"] = "0"


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` are skipped cleanly where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def repo_root(monkeypatch) -> Path:
    """The repository root, made the working directory (config paths are displayed relative to it)."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture
def write_config(tmp_path):
    """write_config(text, name="cfg.py") -> path of a config file holding the dedented text."""

    def write(text: str, name: str = "cfg.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


def _check_one_line(text: str, *needles: str) -> str:
    """Assert a user error is one line (no newline, no traceback) that contains every needle."""
    text = str(text)
    assert "\n" not in text.strip(), f"not one line: {text!r}"
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


@pytest.fixture
def one_line():
    """one_line(text, *needles): the text is a single line naming every needle (file, workload, field...)."""
    return _check_one_line

