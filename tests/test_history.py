"""The history store, change points over runs, and a suite sharded then merged (issue: history across commits)."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

import bench
from bench.cli.main import main
from bench.gate.changes import (
    CHANGE_COLUMNS,
    SUITE,
    breakpoints,
    change_points,
    locate,
    noise,
    suite_factors,
    trend_values,
)
from bench.schema import RowKey
from bench.store.history import HISTORY_COLUMNS, STORE_SCHEMA_VERSION, history_rows, open_store, resolve
from bench.suite.shard import Shard, assign, parse_shard, planned_cost_s, select

CONFIG = """
import functools
from torch import nn
from bench import Workload

WORKLOADS = [
    Workload(name="flat", module=nn.Flatten, input_shape=(4, 8), tags=("views",)),
    Workload(name="lin", module=functools.partial(nn.Linear, 64, 64), input_shape=(32, 64)),
    Workload(name="conv", module=functools.partial(nn.Conv2d, 3, 8, 3), input_shape=(2, 3, 32, 32)),
    Workload(name="big", module=functools.partial(nn.Linear, 256, 256), input_shape=(64, 256)),
]
"""
FAST = dict(device="cpu", budget_s=0.01, warmup_s=0.0, min_samples=3, processes=0)


def fake_history(medians: dict[str, list[float]], *, machine: str = "cpu-m") -> pd.DataFrame:
    """A history frame: one run per position, each workload's median at that run."""
    rows = []
    n = len(next(iter(medians.values())))
    for i in range(n):
        results = pd.DataFrame([dict(workload=w, device="cpu", dtype="float32", variant="default", status="ok",
                                     reason="", median_s=m[i], iqr_s=m[i] * 0.01) for w, m in medians.items()])
        env = dict(time_utc=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00", git_commit=f"c{i:03d}",
                   machine_keys={"cpu": machine})
        rows.append(history_rows(results, env, rid=f"run{i:03d}"))
    return pd.concat(rows, ignore_index=True)


def series(rng, n=40, sd=0.02):
    return 1e-3 * np.exp(rng.normal(0, sd, n))


# ---------------------------------------------------------------- the store
def test_resolve_names_a_file_a_url_the_environment_or_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_STORE", raising=False)
    assert resolve(None, root=tmp_path) == f"sqlite:///{tmp_path.resolve()}/history.sqlite"
    assert resolve(tmp_path / "h.db") == f"sqlite:///{(tmp_path / 'h.db').resolve()}"
    assert resolve("postgresql://u@host/db") == "postgresql://u@host/db"
    assert resolve("none") is None
    monkeypatch.setenv("BENCH_STORE", str(tmp_path / "env.db"))
    assert resolve(None, root=tmp_path) == f"sqlite:///{(tmp_path / 'env.db').resolve()}"
    assert resolve("sqlite:///x.db") == "sqlite:///x.db"


def test_a_run_with_out_adds_its_rows_once_and_import_skips_it(tmp_path, write_config, monkeypatch):
    """By default into results/history.sqlite of the working directory, wherever --out puts the run folder."""
    monkeypatch.delenv("BENCH_STORE")
    monkeypatch.chdir(tmp_path)
    cfg = write_config(CONFIG)
    run = bench.run(str(cfg), out=tmp_path / "r", **FAST)
    assert [p.name for p in (tmp_path / "r").iterdir()] == [run.source.name]
    store = open_store(resolve(None), create=False)
    assert store.url == f"sqlite:///{tmp_path.resolve()}/results/history.sqlite"
    stored = store.read()
    assert list(stored.columns) == list(HISTORY_COLUMNS)
    assert sorted(stored["workload"]) == sorted(run.results["workload"])
    mine = stored.set_index("workload")["median_s"]
    for _, row in run.results.iterrows():
        assert mine[row["workload"]] == pytest.approx(row["median_s"])
    assert set(stored["machine_key"]) == {run.env["machine_keys"]["cpu"]}
    assert set(stored["git_commit"]) == {run.env["git_commit"]}
    assert stored["run_path"].iloc[0] == str(run.source.resolve())
    assert stored.set_index("workload").at["flat", "tags"] == "views"
    done = bench.import_runs([tmp_path / "r"], store=tmp_path / "results" / "history.sqlite")
    assert done.rows == 0 and len(done.already) == 1 and not done.added
    assert len(store.read()) == len(run.results)


def test_import_loads_each_round_as_its_own_run_and_reads_everything_first(tmp_path, write_config):
    cfg = write_config(CONFIG)
    for _ in range(2):
        bench.run(str(cfg), out=tmp_path / "rounds", store="none", filter="lin", **FAST)
    db = tmp_path / "h.sqlite"
    done = bench.import_runs([tmp_path / "rounds"], store=db)
    assert len(done.added) == 2 and done.rows == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "env.json").write_text("{")
    with pytest.raises(bench.BenchError):
        bench.import_runs([tmp_path / "rounds", broken], store=tmp_path / "other.sqlite")
    assert len(open_store(resolve(tmp_path / "other.sqlite")).read()) == 0


def test_a_store_of_a_newer_schema_is_refused_in_one_line(tmp_path, capsys, one_line):
    db = tmp_path / "h.sqlite"
    open_store(resolve(db))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE bench_meta SET value = ? WHERE name = 'schema_version'", (str(STORE_SCHEMA_VERSION + 1),))
    assert main(["history", "--store", str(db)]) == 2
    one_line(capsys.readouterr().err, f"schema {STORE_SCHEMA_VERSION + 1}", "newer bench", "--store")


def test_a_store_of_schema_1_gains_the_trimmed_column_and_keeps_its_rows(tmp_path):
    db = tmp_path / "h.sqlite"
    store = open_store(resolve(db))
    store.append(fake_history({"w": [1e-3, 2e-3]}))
    with sqlite3.connect(db) as conn:  # what schema 1 was: no trimmed_process_mean_s (nor bench_runs.complete)
        conn.execute("ALTER TABLE bench_rows DROP COLUMN trimmed_process_mean_s")
        conn.execute("ALTER TABLE bench_runs DROP COLUMN complete")
        conn.execute("UPDATE bench_meta SET value = '1' WHERE name = 'schema_version'")
    store = open_store(resolve(db), create=False)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM bench_meta WHERE name = 'schema_version'").fetchone() == \
            (str(STORE_SCHEMA_VERSION),)
    store.append(fake_history({"w": [3e-3]}).assign(run_id="later", time_utc="2026-02-01T00:00:00+00:00",
                                                  trimmed_process_mean_s=2.5e-3))
    frame = store.read()
    assert frame["median_s"].tolist() == [1e-3, 2e-3, 3e-3]
    assert frame["trimmed_process_mean_s"].isna().tolist() == [True, True, False]


def test_a_store_whose_tables_are_not_ours_is_one_line_and_the_run_stays_on_disk(tmp_path, write_config, capsys,
                                                                                 one_line, monkeypatch):
    monkeypatch.delenv("BENCH_STORE")
    db = tmp_path / "h.sqlite"
    open_store(resolve(db))
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE bench_workloads")
    cfg = write_config(CONFIG)
    status = main(["run", str(cfg), "--device", "cpu", "--budget-s", "0.01", "--warmup-s", "0", "--min-samples", "3",
                   "--filter", "lin", "--out", str(tmp_path / "o"), "--store", str(db)])
    assert status == 2
    err = one_line(capsys.readouterr().err.strip().splitlines()[-1], "no such table", "bench history import")
    (run_dir,) = (tmp_path / "o").iterdir()
    assert str(run_dir) in err and bench.load(run_dir).complete


@pytest.mark.parametrize("store, needle", [("nosuchdb://x/y", "SQLAlchemy URL"), ("{missing}", "no such file")])
def test_a_bad_or_missing_store_is_one_line(tmp_path, capsys, one_line, store, needle):
    assert main(["history", "--store", store.format(missing=tmp_path / "nope.sqlite")]) == 2
    one_line(capsys.readouterr().err, needle, "--store")


def test_run_refuses_a_bad_store_before_timing_anything(tmp_path, write_config, capsys, one_line):
    cfg = write_config(CONFIG)
    status = main(["run", str(cfg), "--device", "cpu", "--out", str(tmp_path / "o"), "--store", "nosuchdb://x"])
    assert status == 2
    one_line(capsys.readouterr().err, "--store")
    assert not any((tmp_path / "o").glob("*/env.json"))


# ---------------------------------------------------------------- change points
def test_noise_is_robust_to_a_step():
    rng = np.random.default_rng(0)
    y = np.log(series(rng, sd=0.01))
    stepped = y.copy()
    stepped[20:] += np.log(1.5)
    assert noise(stepped) == pytest.approx(noise(y), rel=0.3)


def test_a_step_is_found_at_its_run_and_steady_rows_have_none():
    rng = np.random.default_rng(1)
    steady = series(rng)
    step = series(rng)
    step[20:] *= 1.30
    found = change_points(fake_history({"steady": steady, "step": step}))
    assert list(found.columns) == CHANGE_COLUMNS
    assert found["workload"].tolist() == ["step"]
    change = found.iloc[0]
    assert change["position"] == 20 and change["run_id"] == "run020" and change["git_commit"] == "c020"
    assert change["ratio"] == pytest.approx(1.30, rel=0.03) and change["direction"] == "slower"
    assert change["before_median_s"] == pytest.approx(np.median(step[:20]))


def test_a_change_says_where_it_may_have_started_when_the_runs_at_it_are_ambiguous():
    rng = np.random.default_rng(14)
    y = series(rng, sd=0.01)
    y[20:] *= 1.30
    clean = change_points(fake_history({"step": y})).iloc[0]
    assert clean["earliest_position"] == clean["position"] == clean["latest_position"] == 20
    y[20] /= 1.15  # two runs half-way up: the step may start at 20, 21 or 22
    y[21] /= 1.15
    found = change_points(fake_history({"step": y})).iloc[0]
    assert found["earliest_position"] <= 20 and found["latest_position"] >= 21
    assert found["earliest_run_id"] == f"run{found['earliest_position']:03d}"
    assert locate(np.log(y), [int(found["position"])]) == [(found["earliest_position"], found["latest_position"])]


def test_two_steps_are_both_found_even_when_the_second_level_is_far_from_the_median():
    rng = np.random.default_rng(8)
    y = series(rng)
    y[13:] *= 1.3
    y[27:] *= 1.3
    found = change_points(fake_history({"two": y}))
    assert [abs(p - q) <= 1 for p, q in zip(found["position"], (13, 27))] == [True, True]
    assert found["ratio"].round(1).tolist() == [1.3, 1.3]


def test_one_odd_run_is_not_a_change():
    rng = np.random.default_rng(9)
    y = series(rng)
    y[17] *= 2.0  # a run on a busy machine
    y[30] *= 0.6
    assert change_points(fake_history({"odd": y})).empty


def test_creep_of_five_small_steps_is_found_within_it():
    rng = np.random.default_rng(2)
    creep = series(rng)
    for i in range(5):
        creep[25 + i:] *= 1.03
    found = change_points(fake_history({"creep": creep}))
    assert len(found) >= 1
    assert all(24 <= p <= 31 for p in found["position"])
    assert found["after_median_s"].iloc[-1] / found["before_median_s"].iloc[0] > 1.08


def test_no_change_point_on_many_steady_series_with_heavy_tails():
    """Student-t noise (3 degrees of freedom), 2%: machines have bad runs; none of 100 series gets a change."""
    rng = np.random.default_rng(3)
    false = sum(bool(breakpoints(np.log(1e-3) + rng.standard_t(3, 40) * 0.02 / np.sqrt(3))) for _ in range(100))
    assert false == 0


def test_changes_below_min_change_are_not_reported_and_short_series_have_none():
    rng = np.random.default_rng(4)
    y = np.log(series(rng, sd=0.001))
    y[20:] += np.log(1.01)  # a clear but small step
    assert breakpoints(y, min_change=0.02) == []
    assert breakpoints(y, min_change=0.005) == [20]
    assert breakpoints(y[:5]) == []


def busy_machine_suite(rng, n=40, rows=6):
    """Steady rows of a suite whose every row is slower together in some runs (a busy host for runs 10-14, +25%;
    another host from run 32 on, +15%), beside a row with a +30% step at run 20 of its own."""
    shared = np.ones(n)
    shared[10:15] *= 1.25
    shared[32:] *= 1.15
    medians = {f"steady{i}": series(rng, n, sd=0.01) * shared * (i + 1) for i in range(rows)}
    step = series(rng, n, sd=0.01) * shared
    step[20:] *= 1.30
    return {**medians, "step": step}


def test_rows_are_judged_relative_to_their_suite_and_a_suite_wide_move_is_reported_once():
    rng = np.random.default_rng(11)
    frame = fake_history(busy_machine_suite(rng))
    raw = change_points(frame, relative=False)
    assert raw["workload"].str.startswith("steady").sum() >= 6  # alone, each steady row sees the busy runs
    found = change_points(frame)
    rows = found[found["workload"] != SUITE]
    assert rows[["workload", "position"]].values.tolist() == [["step", 20]]
    assert rows["ratio"].iloc[0] == pytest.approx(1.30, rel=0.03)
    assert rows["raw_ratio"].iloc[0] == pytest.approx(rows["after_median_s"].iloc[0] / rows["before_median_s"].iloc[0])
    suite = found[found["workload"] == SUITE]
    assert suite["position"].tolist() == [10, 15, 32]
    assert suite["ratio"].round(2).tolist() == pytest.approx([1.25, 0.8, 1.15], abs=0.02)
    assert suite["before_median_s"].isna().all()


def test_history_cli_reports_the_suite_apart_and_no_relative_judges_each_row_alone(tmp_path, capsys):
    store = open_store(resolve(tmp_path / "h.sqlite"))
    store.append(fake_history(busy_machine_suite(np.random.default_rng(13))))
    out = tmp_path / "hist"
    assert main(["history", "--store", str(tmp_path / "h.sqlite"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "judged relative to their run's suite factor (40 runs" in text
    changes = pd.read_csv(out / "changes.csv", keep_default_na=False)
    assert sorted(set(changes["workload"])) == [SUITE, "step"]
    assert (out / "trend-whole-suite.png").read_bytes()[:4] == b"\x89PNG"
    assert "(whole suite)" in (out / "index.html").read_text()
    history = pd.read_csv(out / "history.csv")
    assert history["suite_factor"].between(0.9, 1.4).all() and history["relative"].all()
    assert main(["history", "--store", str(tmp_path / "h.sqlite"), "--no-relative", "--out", str(out)]) == 0
    assert "judged relative" not in capsys.readouterr().out
    alone = pd.read_csv(out / "changes.csv")
    assert SUITE not in set(alone["workload"]) and alone["workload"].str.startswith("steady").any()


def test_suite_factors_take_the_median_over_a_run_and_need_enough_rows():
    frame = pd.DataFrame(dict(run_id=["a"] * 5 + ["b"] * 4, device="cpu", machine_key="m"))
    residual = np.log([1.2, 1.2, 1.2, 2.0, 0.5, 3.0, 3.0, 3.0, 3.0])
    factors = np.exp(suite_factors(frame, residual))
    assert factors[:5] == pytest.approx([1.2] * 5) and factors[5:].tolist() == [1.0] * 4  # b: 4 rows, too few


def test_a_suite_factor_leaves_a_row_that_changed_alone_and_filtering_to_few_rows_turns_it_off():
    rng = np.random.default_rng(12)
    medians = busy_machine_suite(rng)
    values, _ = trend_values(fake_history(medians))
    step = values[values["workload"] == "step"]
    assert step["suite_factor"].iloc[12] == pytest.approx(1.25, rel=0.03)  # a busy run
    assert step["relative_value"].iloc[25] / step["relative_value"].iloc[5] == pytest.approx(1.3, rel=0.04)
    few, _ = trend_values(fake_history({k: medians[k] for k in ("steady0", "step")}))
    assert (few["suite_factor"] == 1.0).all() and (few["suite_rows"] == 2).all()


def test_trends_are_per_machine_and_failed_rows_left_out():
    rng = np.random.default_rng(5)
    a, b = series(rng), series(rng) * 2
    a[30:] *= 1.5
    frame = pd.concat([fake_history({"w": a}, machine="m1"), fake_history({"w": b}, machine="m2")])
    frame = frame.reset_index(drop=True)
    frame.loc[3, "status"] = "error"  # a failed run of m1: out of its trend, the change still at run 30
    found = change_points(frame)
    assert found[["machine_key", "run_id", "position"]].values.tolist() == [["m1", "run030", 29]]


def test_history_cli_writes_changes_trends_and_a_page(tmp_path, capsys):
    rng = np.random.default_rng(6)
    step = series(rng)
    step[20:] *= 1.3
    frame = fake_history({"step": step, "steady": series(rng), "<b>x$y$": series(rng)})
    store = open_store(resolve(tmp_path / "h.sqlite"))
    store.append(frame)
    out = tmp_path / "hist"
    assert main(["history", "--store", str(tmp_path / "h.sqlite"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "40 runs, 3 trends" in text and "step" in text and "slower" in text
    changes = pd.read_csv(out / "changes.csv")
    assert changes["workload"].tolist() == ["step"] and changes["position"].tolist() == [20]
    assert len(list(out.glob("trend-*.png"))) == 3
    page = (out / "index.html").read_text()
    assert "<b>x" not in page and "&lt;b&gt;x$y$" in page
    assert main(["history", "--store", str(tmp_path / "h.sqlite"), "--filter", "steady"]) == 0
    assert "40 runs, 1 trends" in capsys.readouterr().out
    assert main(["history", "--store", str(tmp_path / "h.sqlite"), "--filter", "nothing"]) == 2


# ---------------------------------------------------------------- shards
def test_parse_shard_accepts_k_of_n_only(one_line):
    assert parse_shard("2/4") == Shard(2, 4) and str(parse_shard(" 1 / 1 ")) == "1/1"
    for bad in ("0/2", "3/2", "1", "a/b", "1/0", "-1/2"):
        with pytest.raises(bench.BenchError) as info:
            parse_shard(bad)
        one_line(info.value, "--shard", repr(bad))


def test_shards_are_disjoint_cover_the_suite_and_ignore_declaration_order():
    suite = bench.check("seed")
    for count in (1, 2, 3, len(suite)):
        slices = assign(suite, count)
        names = [p.name for s in slices for p in s]
        assert sorted(names) == sorted(p.name for p in suite) and len(set(names)) == len(names)
        assert [[p.name for p in s] for s in assign(list(reversed(suite)), count)] == \
               [[p.name for p in reversed(s)] for s in slices]
    with pytest.raises(bench.BenchError):
        select(suite, Shard(1, len(suite) + 1))


def test_shards_are_balanced_by_planned_cost():
    suite = bench.check("seed")
    slices = assign(suite, 2, fixed_s=1.0, calls=10)
    loads = [sum(planned_cost_s(p, fixed_s=1.0, calls=10) for p in s) for s in slices]
    costs = sorted((planned_cost_s(p, fixed_s=1.0, calls=10) for p in suite), reverse=True)
    # LPT: the two loads differ by at most the largest single cost
    assert abs(loads[0] - loads[1]) <= costs[0]
    heavy = max(suite, key=lambda p: p.flops)
    assert [heavy] in [[p for p in s if p is heavy] for s in slices]


def test_two_shards_merged_equal_one_unsharded_run(tmp_path, write_config):
    cfg = write_config(CONFIG)
    whole = bench.run(str(cfg), out=tmp_path / "whole", **FAST)
    parts = [bench.run(str(cfg), out=tmp_path / f"s{k}", shard=f"{k}/2", **FAST) for k in (1, 2)]
    assert all(p.env["shard"]["suite"] == ["flat", "lin", "conv", "big"] for p in parts)
    assert not set(parts[0].results["workload"]) & set(parts[1].results["workload"])
    merged = bench.merge([p.source for p in parts], out=tmp_path / "merged")
    assert merged.results["workload"].tolist() == whole.results["workload"].tolist()
    same = [c for c in ("workload", "device", "dtype", "variant", "status", "flops", "bytes", "output_shape")]
    pd.testing.assert_frame_equal(merged.results[same].reset_index(drop=True),
                                  whole.results[same].reset_index(drop=True))
    assert merged.env["settings"]["workloads"] == whole.env["settings"]["workloads"]
    assert [m["shard"] for m in merged.env["merged_from"]] == ["1/2", "2/2"]
    again = bench.load(merged.source)
    assert len(again.samples) == sum(len(p.samples) for p in parts)
    assert bench.compare(whole.source, merged.source)["workload"].tolist() == whole.results["workload"].tolist()


def test_merge_refuses_shards_that_do_not_belong_together(tmp_path, write_config, capsys, one_line):
    cfg = write_config(CONFIG)
    s1 = bench.run(str(cfg), out=tmp_path / "s1", shard="1/2", **FAST).source
    s2 = bench.run(str(cfg), out=tmp_path / "s2", shard="2/2", **FAST).source
    other = bench.run(str(cfg), out=tmp_path / "o2", shard="2/2", **dict(FAST, min_samples=4)).source
    plain = bench.run(str(cfg), out=tmp_path / "p", **FAST).source
    three = bench.run(str(cfg), out=tmp_path / "t", shard="2/3", **FAST).source
    fewer = write_config(CONFIG.replace('    Workload(name="big"', '    # Workload(name="big"'), name="fewer.py")
    small = bench.run(str(fewer), out=tmp_path / "f", shard="2/2", **FAST).source
    cases = [([s1], "no shard 2/2"), ([s1, s1], "again"), ([s1, other], "settings.min_samples"),
             ([s1, plain], "without --shard"), ([s1, three], "a shard of 2"), ([s1, small], "shard.suite")]
    for runs, needle in cases:
        assert main(["merge", *map(str, runs), "--out", str(tmp_path / "m")]) == 2, needle
        one_line(capsys.readouterr().err, needle)
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())
    assert main(["merge", str(s2), str(s1), "--out", str(tmp_path / "m")]) == 0


def test_run_shard_through_the_cli_records_it_and_its_rows(tmp_path, write_config, capsys, monkeypatch):
    monkeypatch.delenv("BENCH_STORE")
    cfg = write_config(CONFIG)
    assert main(["run", str(cfg), "--device", "cpu", "--budget-s", "0.01", "--warmup-s", "0", "--min-samples", "3",
                 "--shard", "1/2", "--out", str(tmp_path / "o"), "--root", str(tmp_path / "root")]) == 0
    captured = capsys.readouterr()
    assert "history: 2 rows added" in captured.err  # big and flat or lin and conv: two of four either way
    assert len(open_store(resolve(tmp_path / "root" / "history.sqlite")).read()) == 2
    env = json.loads(next((tmp_path / "o").glob("*/env.json")).read_text())
    assert env["shard"]["index"] == 1 and env["shard"]["count"] == 2
    assert main(["run", str(cfg), "--device", "cpu", "--shard", "3/2", "--out", str(tmp_path / "o")]) == 2


def test_fastest_process_median_is_stored_per_row_and_followed_by_default():
    from bench.store.history import process_statistics

    samples = pd.DataFrame(dict(workload="w", device="cpu", dtype="float32", variant="default",
                                process=[0, 0, 0, 1, 1, 1, 2, 2, 2], device_s=[2, 2.2, 2.1, 1, 1.1, 0.9, 2, 2, 2]))
    # the process medians are 2.1, 1.0 and 2.0
    assert process_statistics(samples) == {RowKey("w", "cpu", "float32", "default"): (1.0, 2.0)}
    # a row whose runs drew fast and slow processes: the pooled median jumps for four runs, the fastest does not
    rng = np.random.default_rng(10)
    fastest = series(rng, sd=0.01)
    median = fastest.copy()
    median[12:16] *= 1.8
    frame = fake_history({"w": median})
    frame["fastest_process_median_s"] = fastest
    assert len(change_points(frame, statistic="median")) == 2  # up at 12, down at 16
    assert change_points(frame).empty
    frame["fastest_process_median_s"] = np.nan  # runs measured in one process: the median is followed
    assert len(change_points(frame)) == 2


@pytest.fixture
def shards(tmp_path, write_config):
    cfg = write_config(CONFIG)
    return [bench.run(str(cfg), out=tmp_path / f"s{k}", shard=f"{k}/2", **FAST).source for k in (1, 2)]


def test_merge_refuses_a_shard_without_the_rows_of_its_slice(shards, tmp_path, capsys, one_line):
    lost = shards[0]
    workloads = json.loads((lost / "env.json").read_text())["settings"]["workloads"]
    for name in ("results.csv", "samples.csv"):  # header only: a shard that lost its rows, still marked complete
        text = (lost / name).read_text()
        (lost / name).write_text(text.splitlines()[0] + "\n")
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "m")]) == 2
    one_line(capsys.readouterr().err, str(lost), "results.csv", *workloads)
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


@pytest.mark.parametrize("settings", [["budget_s", 1], "fast", {"workloads": "flat"}])
def test_merge_refuses_settings_that_are_not_an_object_in_one_line(shards, tmp_path, capsys, one_line, settings):
    env = json.loads((shards[1] / "env.json").read_text())
    if isinstance(settings, dict):  # the other settings as they were: only the list of workloads is not a list
        settings = dict(env["settings"], **settings)
    (shards[1] / "env.json").write_text(json.dumps(dict(env, settings=settings)))
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "m")]) == 2
    one_line(capsys.readouterr().err, str(shards[1]), "settings")
