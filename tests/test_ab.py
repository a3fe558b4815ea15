"""bench ab end to end in a real git repository, the stored baseline's machine check, the instructions metric."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_compare import run_frames, samples, write_run

import bench
from bench.errors import BenchError
from bench.gate.rule import decide_count
from bench.suite.pickling import dumps_workloads

CONFIG = """
from torch import nn
from bench import Workload

WORKLOADS = [Workload(name="lin", module=nn.Identity, input_shape=(4, 8))]
"""


def _bench(args, cwd: Path, **env):
    environ = {k: v for k, v in os.environ.items() if k != "BENCH_PROCESSES"}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=environ, timeout=600)


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "cfg.py").write_text(textwrap.dedent(CONFIG))
    for args in (["init", "-q"], ["add", "cfg.py"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def test_ab_measures_both_sides_in_pairs_and_cleans_its_worktree(repo):
    """Two pairs of real workers from HEAD's tree (under --base-python) and the working tree: two paired runs,
    ab.json; too few pairs to judge the row: exit 2, not a pass."""
    done = _bench(["ab", "cfg.py", "--base-ref", "HEAD", "--base-python", sys.executable, "--device", "cpu",
                   "--processes", "2", "--blocks", "2",
                   "--budget-s", "0.02", "--warmup-s", "0", "--min-samples", "3", "--out", "out"], repo)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith("NOT A VERDICT: 1 row(s) could not be judged (1 too few processes)")
    assert "more pairs (--processes 8 or more)" in done.stderr
    (folder,) = (repo / "out").iterdir()
    job = json.loads((folder / "ab.json").read_text())
    assert job["base_ref"] == "HEAD" and len(job["base_commit"]) == 40 and job["base_python"] == sys.executable
    base, cand = bench.load(folder / "baseline"), bench.load(folder / "candidate")
    assert base.env["ab"]["side"] == "baseline" and cand.env["ab"]["id"] == base.env["ab"]["id"]
    for run in (base, cand):  # 2 pairs, fewer than every default look: one look, at 2 pairs
        assert run.env["ab"]["looks"] == [2] and run.env["ab"]["pairs_per_row"] == {"lin / cpu / float32": 2}
        assert run.results["n_processes"].tolist() == [2]
        assert sorted(run.samples["process"].unique()) == [0, 1]
    cmp = bench.comparison(base, cand)
    assert cmp.paired and cmp.verdicts[0].verdict == "unsure" and "too few pairs" in cmp.verdicts[0].reason
    assert (folder / "gate.md").is_file() and "paired" in done.stdout
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
    assert len(worktrees.strip().splitlines()) == 1  # the temporary worktree is gone
    with pytest.raises(BenchError, match="A/B folder"):
        bench.load(folder)  # two versions of the code are never pooled as rounds


def test_ab_refuses_a_config_missing_at_the_base_ref_and_a_bad_ref(repo):
    """One line, exit 2, before any worker starts."""
    (repo / "new.py").write_text(textwrap.dedent(CONFIG))
    done = _bench(["ab", "new.py", "--base-ref", "HEAD", "--device", "cpu"], repo)
    assert done.returncode == 2 and "no such file at HEAD" in done.stderr and len(done.stderr.splitlines()) == 1
    done = _bench(["ab", "cfg.py", "--base-ref", "no-such-ref", "--device", "cpu"], repo)
    assert done.returncode == 2 and "--base-ref" in done.stderr and len(done.stderr.splitlines()) == 1


def _probe(env: dict, scale: float) -> dict:
    return dict(env, speed_probe={"python_s": 0.01 * scale, "matmul_s": 0.007 * scale})


def test_a_machine_that_differs_as_a_whole_is_said_and_passes(tmp_path, capsys):
    """A stored baseline from a 2x slower machine: 'machine differs', exit 0; one slower row alone: exit 1."""
    from bench.cli.main import main

    rows = {name: samples(1e-3, seed=i) for i, name in enumerate("abcd")}
    base = write_run(tmp_path / "base", rows, env=_probe({}, 1.0))
    moved = write_run(tmp_path / "moved", {k: 2 * v for k, v in rows.items()}, env=_probe({}, 2.0))
    assert main(["compare", str(base), str(moved), "--stored-baseline"]) == 0
    assert "MACHINE DIFFERS" in capsys.readouterr().err
    cmp = bench.comparison(base, moved, stored_baseline=True)
    assert "speed probe" in cmp.machine_differs and "rows slower together" in cmp.machine_differs
    assert bench.comparison(base, moved).machine_differs == ""  # only with a stored baseline
    one = write_run(tmp_path / "one", dict(rows, a=2 * rows["a"]), env=_probe({}, 1.0))
    assert main(["compare", str(base), str(one), "--stored-baseline"]) == 1
    assert "MACHINE DIFFERS" not in capsys.readouterr().err


def test_instruction_counts_are_judged_without_a_test():
    """Deterministic counts: slower from half the threshold, same below it, unsure without a count."""
    assert decide_count(1000.0, 1060.0, threshold=0.1)[0] == "slower"
    assert decide_count(1000.0, 1001.0, threshold=0.1)[0] == "same"
    assert decide_count(1000.0, 900.0, threshold=0.1)[0] == "faster"
    assert decide_count(float("nan"), 1000.0, threshold=0.1)[0] == "unsure"


def test_compare_metric_instructions_reads_the_counts(tmp_path):
    """compare(metric="instructions") judges results.csv's instructions, not the (noisy) times; the default (auto)
    both combined, where counts slower is slower; metric="time" the times alone."""
    results, smp, env = run_frames({"a": samples(1e-3)})
    base = bench.Run(results=results.assign(instructions=1000.0), samples=smp, env=env)
    cand = bench.Run(results=results.assign(instructions=1200.0), samples=smp, env=env)
    (v,) = bench.comparison(base, cand, metric="instructions").verdicts
    assert v.verdict == "slower" and v.ratio == pytest.approx(1.2)
    (v,) = bench.comparison(base, cand).verdicts
    assert v.verdict == "slower" and v.count_ratio == pytest.approx(1.2) and v.ratio == pytest.approx(1.0)
    (v,) = bench.comparison(base, cand, metric="time").verdicts  # the same times: not slower
    assert v.verdict != "slower"


def _in_main():
    return None


_in_main.__module__ = "__main__"


def test_a_factory_defined_in_main_travels_by_value():
    """A worker has no such __main__: the factory is pickled by value (cloudpickle) and rebuilt from its code."""
    import pickle

    w = bench.Workload(name="m", module=_in_main, input_shape=(2,))
    (back,) = pickle.loads(dumps_workloads([w]))
    assert back.name == "m" and back.module() is None


def test_bench_processes_must_be_an_integer(monkeypatch):
    from bench.api.running import default_processes

    monkeypatch.setenv("BENCH_PROCESSES", "many")
    with pytest.raises(BenchError, match="BENCH_PROCESSES"):
        default_processes()
    monkeypatch.setenv("BENCH_PROCESSES", "3")
    assert default_processes() == 3


@pytest.mark.skipif(shutil.which("valgrind") is None or shutil.which("cc") is None, reason="needs valgrind and cc")
def test_run_metric_instructions_counts_with_callgrind(tmp_path):
    """A real worker under callgrind (about a minute: torch imports under valgrind): a count per CPU row, twice
    the same within 0.2%, and the time columns still from the timed workers."""
    cfg = tmp_path / "cfg.py"
    cfg.write_text(textwrap.dedent(CONFIG).replace("nn.Identity", "nn.Flatten"))
    counts = []
    for i in range(2):
        done = _bench(["run", cfg, "--device", "cpu", "--processes", "1", "--metric", "instructions", "--budget-s",
                       "0.02", "--warmup-s", "0", "--min-samples", "3", "--out", tmp_path / f"o{i}"], tmp_path)
        assert done.returncode == 0, done.stderr
        run = bench.load(tmp_path / f"o{i}")
        assert run.results["n_processes"].tolist() == [1] and run.results["status"].tolist() == ["ok"]
        counts.append(float(run.results["instructions"].iloc[0]))
    assert counts[0] > 1000 and abs(counts[1] / counts[0] - 1) < 0.002, counts
