"""What the gate judges and what it will not: a changed definition under a row's name, rows the machine decided, rows
too few processes cannot judge (exit 2, not a pass), time and instruction counts combined, and the rows to look at
said first in gate.md and last on the console."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_compare import run_frames, samples, write_run
from torch import nn

from bench.cli.main import main
from bench.errors import BenchError
from bench.gate.combined import decide_combined
from bench.gate.compare import EMPTY, FEW, MACHINE, NOISE, compare_runs
from bench.gate.identity import definition_change
from bench.gate.rule import Figures, decide_count
from bench.stats import machine_decided
from bench.store.folder import Run
from bench.suite.plan import plan_one
from bench.suite.workload import Workload


def runs(base_rows: dict, cand_rows: dict, *, base_cols: dict | None = None, cand_cols: dict | None = None,
         processes: tuple[int, int] = (10, 10), env: tuple[dict, dict] = ({}, {})) -> tuple[Run, Run]:
    """Two in-memory runs from {workload: samples}, with extra results columns given per side."""
    out = []
    for rows, cols, n, e in zip((base_rows, cand_rows), (base_cols, cand_cols), processes, env):
        results, smp, env_ = run_frames(rows, processes=n, env=e)
        out.append(Run(results=results.assign(**(cols or {})), samples=smp, env=env_))
    return out[0], out[1]


# ---------------------------------------------------------------- a row's identity includes its definition
def test_the_plan_fingerprint_follows_what_defines_the_row():
    def fp(module, shape=(2, 8), variant="default", dtype="float32"):
        w = Workload(name="x", module=module, input_shape=shape)
        return plan_one(w, "t").fingerprint(variant, dtype)

    linear = fp(lambda: nn.Linear(8, 4))
    assert linear == fp(lambda: nn.Linear(8, 4)) and len(linear) == 16
    assert int(linear, 16) >= 0  # hex digits
    assert linear != fp(lambda: nn.Linear(8, 5))  # another parameter shape
    assert linear != fp(lambda: nn.Linear(8, 4), shape=(3, 8))  # another input
    assert linear != fp(lambda: nn.Linear(8, 4), variant="compile")
    assert linear != fp(lambda: nn.Linear(8, 4), dtype="bfloat16")
    relu = fp(lambda: nn.Sequential(nn.Linear(8, 4), nn.ReLU()))
    assert relu != fp(lambda: nn.Sequential(nn.Linear(8, 4), nn.GELU()))  # same shapes, another layer


def test_a_changed_definition_is_changed_never_judged_and_names_what_differs():
    x = samples(1e-3)
    base, cand = runs({"a": x, "b": x}, {"a": 2 * x, "b": x},
                      base_cols={"definition": ["d1", "d2"], "params": [2080, 10], "output_shape": ["[16, 32]"] * 2},
                      cand_cols={"definition": ["d9", "d2"], "params": [4160, 10],
                                 "output_shape": ["[16, 64]", "[16, 32]"]})
    cmp = compare_runs(base, cand)
    a, b = cmp.verdicts
    assert a.verdict == "changed" and b.verdict == "same"
    assert "params 2,080 -> 4,160" in a.reason and "output [16, 32] -> [16, 64]" in a.reason
    assert a.ratio == pytest.approx(2.0, rel=0.05)  # the time change is shown, not judged
    assert cmp.slower == () and cmp.changed == (a,) and cmp.unjudged == ()


def test_old_folders_without_the_column_compare_the_columns_they_have():
    row = {"inputs": "float32[2,8]", "output_shape": "[2, 4]", "params": 36.0, "flops": 128.0}
    assert definition_change(row, dict(row)) == ""
    assert definition_change(row, dict(row, flops=256.0)) == "FLOPs 128 -> 256"
    assert definition_change(row, dict(row, inputs="float32[3,8]")) == "inputs float32[2,8] -> float32[3,8]"
    assert definition_change({"input_shape": "[2, 8]"}, {"input_shape": "[3, 8]"}) == "input [2, 8] -> [3, 8]"
    assert definition_change(row, {}) == ""  # nothing to tell them apart by
    assert definition_change(row, dict(row, params=np.int64(36), flops=np.float32(128))) == ""  # numpy scalars
    assert definition_change(row, dict(row, params=float("nan"), inputs=None)) == ""  # missing on a side
    digests = dict(row, definition="aaaa"), dict(row, definition="bbbb")
    assert "the layers or their settings differ" in definition_change(*digests)
    # another torch may print the module otherwise and count FLOPs otherwise: only shapes and parameters count
    assert definition_change(*digests, same_torch=False) == ""
    assert definition_change(digests[0], dict(digests[1], flops=1.0), same_torch=False) == ""
    assert definition_change(digests[0], dict(digests[1], params=1.0), same_torch=False) == "params 36 -> 1"


def test_a_changed_row_exits_0_and_is_listed_first(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"a": samples(1e-3), "b": samples(1e-3)})
    cand = write_run(tmp_path / "cand", {"a": samples(3e-3, seed=1), "b": samples(1e-3, seed=2)})
    for folder, params in ((base, 2080), (cand, 4160)):
        results = (folder / "results.csv").read_text().splitlines()
        (folder / "results.csv").write_text("\n".join([results[0] + ",params", *(line + f",{params}" for line in
                                                                                  results[1:])]) + "\n")
    assert main(["compare", str(base), str(cand)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("PASS: no row slower (0 slower, 2 changed")
    assert any(line.startswith("changed: a / cpu / float32: definition changed: params 2,080 -> 4,160") for line in out)
    text = (cand / "gate.md").read_text()
    assert text.startswith("### ✅ No row slower (2 row(s) changed their definition: not judged)")
    assert text.index("Rows to look at") < text.index("| row |")
    assert "🔶 changed" in text


def test_a_config_that_changed_under_the_same_name_is_changed_through_run_and_compare(write_config, tmp_path,
                                                                                      capsys):
    """Real runs: results.csv carries the digest, and a Linear(8, 4) that became Linear(8, 8) is changed."""
    folders = []
    for out, width in (("a", 4), ("b", 8), ("c", 4)):
        cfg = write_config(f"""
            from torch import nn
            from bench import Workload
            WORKLOADS = [Workload(name="tiny", module=lambda: nn.Linear(8, {width}), input_shape=(2, 8))]
        """, name=f"cfg_{out}.py")
        assert main(["run", str(cfg), "--out", str(tmp_path / out), "--device", "cpu", "--budget-s", "0.05",
                     "--warmup-s", "0.01", "--min-samples", "3"]) == 0
        folders += list((tmp_path / out).iterdir())
    digests = [pd.read_csv(f / "results.csv", dtype={"definition": str})["definition"][0] for f in folders]
    assert digests[0] == digests[2] != digests[1] and len(digests[0]) == 16
    capsys.readouterr()
    assert main(["compare", str(folders[0]), str(folders[1])]) == 0
    assert "definition changed: output [2, 4] -> [2, 8]; params 36 -> 72" in capsys.readouterr().out
    assert main(["compare", str(folders[0]), str(folders[2])]) == 2  # the same layer, one process a side


# ---------------------------------------------------------------- rows the machine decided
@pytest.mark.parametrize("medians, decided", [
    ([108e-6, 114e-6, 121e-6, 1.7e-3, 28.6e-3, 31.9e-3, 32e-3], True),  # a busy 2-core machine
    ([1e-3] * 15 + [50e-3], False),  # one process off for its whole life: noise the ranks absorb
    ([1e-3] * 14 + [50e-3] * 2, True),
    ([1e-3, 2.9e-3], False), ([1e-3, 3e-3], True), ([1e-3, 1e-3, 20e-3], True),
    ([1e-3] * 5 + [2.5e-3] * 2, False),  # processes tens of percent apart: the layer's own spread
    ([1e-3], False), ([], False), ([1e-3, float("nan"), 0.0], False),
])
def test_machine_decided(medians, decided):
    assert machine_decided(medians) is decided


def _bimodal(n: int = 40, processes: int = 10) -> np.ndarray:
    """Samples whose processes 0-5 read microseconds and 6-9 milliseconds (sample i from process i % processes)."""
    return np.array([1e-4 if i % processes < 6 else 1e-2 for i in range(n)]) * (1 + 0.001 * np.arange(n) / n)


def test_a_row_the_machine_decided_is_unsure_not_judged():
    x = samples(1e-4)
    cmp = compare_runs(*runs({"a": x, "b": x}, {"a": _bimodal(), "b": x}))
    a, b = cmp.verdicts
    assert a.verdict == "unsure" and a.cause == MACHINE and not a.judged and b.verdict == "same"
    assert a.reason.startswith("the machine, not the layer, decided this row (process medians 100 us to 10.0")
    assert "ms in the candidate): not judged; rerun on a quieter runner" in a.reason
    # flagged in results.csv (bench run's own rule), though these processes agree
    cmp = compare_runs(*runs({"a": x}, {"a": x}, cand_cols={"machine_decided": [True]}))
    assert cmp.verdicts[0].cause == MACHINE and "process medians" in cmp.verdicts[0].reason


def test_the_machine_decides_even_a_2x_slowdown_out_of_the_verdict(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"a": samples(1e-4)})
    cand = write_run(tmp_path / "cand", {"a": 2 * _bimodal()})
    assert main(["compare", str(base), str(cand)]) == 2
    out, err = capsys.readouterr()
    assert "NOT JUDGED: a / cpu / float32 (machine decided)" in out and "would resolve: a quieter runner" in out
    assert err.strip().splitlines()[-1].startswith("NOT A VERDICT: 1 row(s) could not be judged (1 machine decided)")


# ---------------------------------------------------------------- a comparison that cannot judge is not a pass
def test_too_few_processes_is_exit_2_even_for_a_row_1e5_times_slower(tmp_path, capsys):
    """The issue's case: a candidate whose samples were all set absurdly high, 2 processes a side."""
    base = write_run(tmp_path / "base", {"a": samples(1e-3), "b": samples(1e-3)}, processes=2)
    cand = write_run(tmp_path / "cand", {"a": samples(1e-3, seed=1) * 1e5, "b": samples(1e-3, seed=2)}, processes=2)
    assert main(["compare", str(base), str(cand)]) == 2
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert line == ("NOT A VERDICT: 2 row(s) could not be judged (2 too few processes); would resolve: more processes "
                    "(--processes 7 or more): exit 2")
    assert "### ⚠️ 2 row(s) not judged: not a pass" in (cand / "gate.md").read_text()
    assert "No row slower" not in (cand / "gate.md").read_text()


def test_a_slower_row_wins_over_rows_not_judged(tmp_path, capsys):
    """Row b has samples from 4 processes (too few to judge), row a from 10 and twice as slow: exit 1."""
    base = write_run(tmp_path / "base", {"a": samples(1e-3), "b": samples(1e-3, n=4)})
    cand = write_run(tmp_path / "cand", {"a": samples(2e-3, seed=1), "b": samples(1e-3, n=4, seed=2)})
    assert main(["compare", str(base), str(cand)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "SLOWER: 1 row(s) slower (a / cpu / float32): exit 1"
    assert any(line.startswith("NOT JUDGED: b / cpu / float32 (too few processes)") for line in out)


def test_rows_unsure_by_noise_alone_still_pass_and_say_what_would_resolve_them(capsys, tmp_path):
    base = write_run(tmp_path / "base", {"a": samples(1e-3, rel_noise=0.3)})
    cand = write_run(tmp_path / "cand", {"a": samples(1e-3, rel_noise=0.3, seed=4)})
    assert main(["compare", str(base), str(cand)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("PASS: no row slower (0 slower, 1 unsure")
    (line,) = [x for x in out if x.startswith("unsure: ")]
    assert "(noise)" in line and "could detect +" in line
    assert "would resolve: instruction counts (valgrind; CI_METRIC=instructions), or more processes (--processes 20)" \
           in line


def test_every_cause_of_unsure():
    x = samples(1e-3)
    cmp = compare_runs(*runs({"a": x}, {"a": x}, processes=(2, 2)))
    assert cmp.verdicts[0].cause == FEW
    cmp = compare_runs(*runs({"a": samples(1e-3, rel_noise=0.3)}, {"a": samples(1e-3, rel_noise=0.3, seed=4)}))
    assert cmp.verdicts[0].cause == NOISE and cmp.verdicts[0].judged
    cmp = compare_runs(*runs({"a": x}, {"a": x}), metric="instructions")
    assert cmp.verdicts[0].cause == EMPTY and not cmp.verdicts[0].judged
    assert compare_runs(*runs({"a": x}, {"a": x})).verdicts[0].cause == ""  # same: no cause


# ---------------------------------------------------------------- time and instruction counts combined
def _time(verdict: str, ratio: float = 1.0) -> tuple:
    return verdict, f"time says {verdict}", Figures(ratio, ratio * 0.9, ratio * 1.1, 0.5)


@pytest.mark.parametrize("time, count, verdict, says", [
    ("unsure", 1.10, "slower", "instructions +10.00%"),  # counts decide what time cannot
    ("same", 1.10, "slower", "instructions +10.00%"),
    ("slower", 1.00, "slower", "the counts did not move (counts cannot see cache or layout changes)"),
    ("slower", 0.80, "slower", "the counts did not move"),  # time slower wins over counts faster
    ("unsure", 0.80, "faster", "instructions -20.00%"),
    ("unsure", 1.001, "same", "instructions +0.10%; time unsure (time says unsure): counts cannot see cache"),
    ("same", 1.001, "same", "time time says same; instructions +0.10%"),
    ("faster", 1.0, "faster", "instructions +0.00%"),
])
def test_the_combined_rule(time, count, verdict, says):
    got, reason = decide_combined(_time(time), decide_count(1000.0, 1000.0 * count, threshold=0.1))
    assert got == verdict and says in reason, reason


def test_without_counts_the_time_verdict_stands():
    assert decide_combined(_time("unsure"), decide_count(float("nan"), 1.0, threshold=0.1)) == ("unsure",
                                                                                               "time says unsure")


def test_compare_auto_combines_where_both_sides_have_counts_and_times_elsewhere():
    x = samples(1e-3)
    rows = {"a": x, ("g", "cuda", "float32", "default"): x}
    cmp = compare_runs(*runs(rows, rows, processes=(2, 2), base_cols={"instructions": [1000.0, None]},
                             cand_cols={"instructions": [1001.0, None]}))
    a, g = cmp.verdicts
    assert a.verdict == "same" and a.judged and "time unsure" in a.reason and a.count_ratio == pytest.approx(1.001)
    assert g.verdict == "unsure" and g.cause == FEW and g.count_ratio != g.count_ratio  # CUDA: time alone
    assert cmp.counted and cmp.unjudged == (g,)
    time_only = compare_runs(*runs(rows, rows, processes=(2, 2), base_cols={"instructions": [1000.0, None]},
                                   cand_cols={"instructions": [1001.0, None]}), metric="time")
    assert time_only.verdicts[0].verdict == "unsure" and not time_only.counted


def test_a_layout_slowdown_counts_cannot_see_is_slower_by_time(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"a": samples(1e-3)})
    cand = write_run(tmp_path / "cand", {"a": samples(1.5e-3, seed=1)})
    for folder in (base, cand):
        lines = (folder / "results.csv").read_text().splitlines()
        (folder / "results.csv").write_text(f"{lines[0]},instructions\n{lines[1]},5000\n")
    assert main(["compare", str(base), str(cand)]) == 1
    out = capsys.readouterr().out
    assert "instructions +0.00%: the counts did not move" in out
    header, row = out.splitlines()[:2]  # the time change and the count change side by side
    assert header.split()[5:8] == ["[99%", "interval]", "instructions"] and "+0.00%" in row.split("]")[1].split()[0]
    assert "time and instructions: counts slower or time slower is slower" in (cand / "gate.md").read_text()


def test_the_metric_option_refuses_others():
    x = samples(1e-3)
    with pytest.raises(BenchError, match="--metric"):
        compare_runs(*runs({"a": x}, {"a": x}), metric="cycles")
