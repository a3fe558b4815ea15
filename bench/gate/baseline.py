"""The baseline store: results/baselines/<machine_key>/, one folder per kind of machine and device.

A store folder is a run folder (results.csv, samples.csv, env.json: `bench compare` reads it as such)
holding one device's rows, plus baseline.json (where it came from) and, after `bench calibrate`,
noise.csv (per workload: the relative spread of medians between A/A runs) and calibration.csv (the
medians behind it). Each CI machine type compares against its own folder. `load_rounds` reads a
folder of several runs of one suite (`make ci-bench` takes three) as one pooled run.
"""
from __future__ import annotations

import difflib
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from bench.gate.compare import BASE_KEY, NOT_APPLICABLE, env_differences, key_columns
from bench.measure.env import machine_key
from bench.errors import BenchError, Problem
from bench.measure.sampling import Policy
from bench.suite.plan import Plan
from bench.store.runs import RESULTS_DIR, RunWriter, load_run, to_frame, write_atomic
from bench.measure.runner import CUDA_POLICY, Record, run_suite

BASELINES_DIR = RESULTS_DIR / "baselines"
NOISE_FILE = "noise.csv"
CALIBRATION_FILE = "calibration.csv"


def store_dir(device: str, *, root: Path = BASELINES_DIR, key: str | None = None) -> Path:
    """This machine's store folder for `device` (key: a run's recorded machine key, else this machine's)."""
    return Path(root) / (key or machine_key(device))


def has_baseline(folder: Path) -> bool:
    return all((Path(folder) / name).is_file() for name in ("results.csv", "samples.csv", "env.json"))


def _argv_without_out(argv) -> list[str] | None:
    """A run's command line (env.json "argv") without the value of --out, which differs between rounds."""
    if not isinstance(argv, list):
        return argv
    out, skip = [], False
    for token in map(str, argv):
        if skip:
            skip = False
        elif token == "--out":
            out.append(token)
            skip = True
        elif token.startswith("--out="):
            out.append("--out")
        else:
            out.append(token)
    return out


def _first_difference(a: list[str] | None, b: list[str] | None) -> tuple[str, str]:
    """The part of two command lines that differs, with the option before it: ("--budget-s 0.3", "--budget-s 0.05")."""
    if not isinstance(a, list) or not isinstance(b, list):
        return repr(a), repr(b)
    op = next(o for o in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if o[0] != "equal")
    _, i1, i2, j1, j2 = op
    inserted = i1 == i2 or j1 == j2  # one side has nothing there: show a neighbour for context
    lead = 1 if i1 > 0 and (inserted or a[i1 - 1].startswith("-")) else 0  # and the option whose value changed
    tail = 1 if inserted and not lead else 0
    show = lambda tokens, lo, hi: " ".join(tokens[lo - lead:hi + tail])  # noqa: E731
    return show(a, i1, i2), show(b, j1, j2)


def _identities(results: pd.DataFrame) -> set[tuple[str, ...]]:
    key = list(BASE_KEY) + (["variant"] if "variant" in results.columns else [])
    return {tuple(str(v) for v in row) for row in results[key].fillna("").itertuples(index=False)}


def _check_rounds(path: Path, rounds: list[Path], loaded: list[tuple[pd.DataFrame, pd.DataFrame, dict]]) -> None:
    """Rounds pool only when they are one measurement repeated: every round complete, the same command
    line apart from --out, the same rows, the same environment. BenchError (one line) naming what differs."""
    for p, (_, _, env) in zip(rounds, loaded):
        if env.get("complete") is not True:
            raise BenchError(Problem(where=str(p / "env.json"), field="complete",
                                     expected=f"every round of {path} finished",
                                     found=f"an incomplete round ({env.get('incomplete_reason', 'unfinished')})"))
    first, (r0, _, e0) = rounds[0], loaded[0]
    argv0, rows0 = _argv_without_out(e0.get("argv")), _identities(r0)
    for p, (results, _, env) in zip(rounds[1:], loaded[1:]):
        argv = _argv_without_out(env.get("argv"))
        if argv != argv0:
            want, got = _first_difference(argv0, argv)
            raise BenchError(Problem(where=str(path), field="argv (rounds of one run: the same command apart from --out)",
                                     expected=f"'{want}' as in {first.name}", found=f"'{got}' in {p.name}"))
        rows = _identities(results)
        if rows != rows0:
            extra, missing = sorted(rows - rows0), sorted(rows0 - rows)
            found = "; ".join(part for part in (
                f"{len(missing)} row(s) missing, e.g. {' / '.join(missing[0])}" if missing else "",
                f"{len(extra)} extra row(s), e.g. {' / '.join(extra[0])}" if extra else "") if part)
            raise BenchError(Problem(where=str(path), field="rows (rounds of one run)",
                                     expected=f"the {len(rows0)} rows of {first.name}", found=f"{found} in {p.name}"))
        diffs = [d for d in env_differences(e0, env, devices={"cpu", "cuda"}) if d.blocking]
        if diffs:
            raise BenchError(Problem(where=str(p / "env.json"), field=diffs[0].field,
                                     expected=f"{diffs[0].baseline} as in {first / 'env.json'} (rounds of one run)",
                                     found=diffs[0].candidate))


def load_rounds(path: Path | str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """A run folder, or a folder of run folders (rounds of the same suite, e.g. `bench run` three times
    with the same --out), as one run: samples pooled, a row failed if it failed in any round (the
    other columns of results.csv are the first round's). Rounds spread each row's samples over time,
    so one burst of load on a shared machine moves a row less. Rounds must belong together: each
    complete, the same command line apart from --out (env.json "argv"), the same rows and environment;
    otherwise BenchError naming the folder and what differs."""
    path = Path(path)
    rounds = sorted(p for p in path.iterdir() if (p / "env.json").is_file()) if path.is_dir() else []
    if (path / "env.json").is_file() or not rounds:
        return load_run(path)
    loaded = [load_run(p) for p in rounds]
    _check_rounds(path, rounds, loaded)
    env = loaded[0][2]
    results = pd.concat([r for r, _, _ in loaded], ignore_index=True)
    key = key_columns(results)
    results = results.sort_values("status", key=lambda s: s != "ok", kind="stable", ascending=False)
    results = results.drop_duplicates(subset=key).sort_index()
    samples = pd.concat([s for _, s, _ in loaded], ignore_index=True)
    samples["sample"] = samples.groupby(key_columns(samples)).cumcount()
    env = dict(env, complete=True, rounds=len(loaded))
    return results, samples, env


def promote(run_dir: Path | str, *, root: Path = BASELINES_DIR, source: str = "") -> list[Path]:
    """Copy a run's rows into the store, one folder per device under the machine key the run recorded.

    run_dir may be a folder of rounds (see load_rounds): the baseline then holds their pooled samples.
    Replaces an older baseline of that folder but keeps its noise.csv (calibration is of the machine,
    not of one run). Refuses incomplete runs and runs with failed rows; rows not-applicable (a variant
    that cannot run on that device) are not failures and are kept. Returns the folders written.
    """
    run_dir = Path(run_dir)
    results, samples, env = load_rounds(run_dir)
    where = str(run_dir / "env.json")
    if env.get("complete") is not True:
        raise BenchError(Problem(where=where, field="complete", expected="a finished run to promote",
                                 found=f"an incomplete run ({env.get('incomplete_reason', 'unfinished')})"))
    failed = results[~results["status"].isin(["ok", NOT_APPLICABLE])]
    if len(failed):
        raise BenchError(Problem(where=str(run_dir / "results.csv"), field="status", expected="ok on every row",
                                 found=f"{len(failed)} failed row(s), e.g. {failed.iloc[0]['workload']}: "
                                       f"{failed.iloc[0]['status']}"))
    written = []
    keys = env.get("machine_keys") or {}
    for device in sorted(set(results["device"])):
        folder = store_dir(device, root=root, key=keys.get(device))
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "results.csv", results[results["device"] == device].to_csv(index=False))
        write_atomic(folder / "samples.csv", samples[samples["device"] == device].to_csv(index=False))
        write_atomic(folder / "env.json", json.dumps(env, indent=2, default=str) + "\n")
        write_atomic(folder / "baseline.json", json.dumps({
            "source": source or str(run_dir), "device": device,
            "promoted_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2) + "\n")
        written.append(folder)
    return written


def load_noise(folder: Path) -> dict[tuple[str, ...], float]:
    """noise.csv of a store folder as {identity: relative noise}; empty when the folder was never calibrated."""
    path = Path(folder) / NOISE_FILE
    if not path.is_file():
        return {}
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BenchError(Problem(where=str(path), expected="a readable CSV", found=type(exc).__name__)) from None
    key = key_columns(frame)
    missing = [c for c in key + ["noise"] if c not in frame.columns]
    if missing or not pd.api.types.is_numeric_dtype(frame["noise"]) or (frame["noise"] < 0).any():
        raise BenchError(Problem(where=str(path), field=", ".join(missing) or "noise",
                                 expected="columns workload, device, dtype, noise (a fraction >= 0)",
                                 found="missing columns" if missing else "non-numeric or negative noise"))
    return {tuple(str(v) for v in row[key]): float(row["noise"]) for _, row in frame.iterrows()}


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Per-row medians of every repeat (long frame: workload, device, dtype, repeat, median_s) and the
    noise per row: max median / min median - 1 over the repeats, the largest A/A difference seen."""

    medians: pd.DataFrame
    noise: pd.DataFrame
    records: tuple[Record, ...]  # the first repeat's records, to seed a baseline when there is none


def noise_of(medians: pd.DataFrame) -> pd.DataFrame:
    """noise = max/min - 1 of each row's medians over the repeats it ran in. A row with a median from fewer
    than 2 repeats (it failed in the others) gets no noise value: one median shows no spread, and 0 would
    claim a quiet row. `compare` then uses the row's threshold unwidened."""
    key = key_columns(medians)
    grouped = medians.dropna(subset=["median_s"]).groupby(key)["median_s"]
    frame = pd.DataFrame({"noise": grouped.max() / grouped.min() - 1, "repeats": grouped.count()}).reset_index()
    return frame[frame["repeats"] >= 2].dropna(subset=["noise"]).reset_index(drop=True)


def calibrate(plans: list[Plan], devices: list[str], *, repeats: int = 5, policy: Policy = Policy(),
              cuda_policy: Policy = CUDA_POLICY, run: Callable[..., list[Record]] = run_suite) -> Calibration:
    """Run the suite `repeats` times (an A/A experiment) and measure how much each row's median moves."""
    if repeats < 2:
        raise BenchError(Problem(where="calibrate", field="--repeats", expected="at least 2", found=str(repeats)))
    frames, first = [], ()
    for i in range(repeats):
        records = run(plans, devices, policy=policy, cuda_policy=cuda_policy)
        first = first or tuple(records)
        frame = to_frame(records)
        frame = frame[frame["status"] == "ok"][["workload", "device", "dtype", "median_s"]].assign(repeat=i)
        frames.append(frame)
    medians = pd.concat(frames, ignore_index=True)
    return Calibration(medians=medians, noise=noise_of(medians), records=first)


def save_calibration(cal: Calibration, env: dict, *, root: Path = BASELINES_DIR) -> list[Path]:
    """Write noise.csv and calibration.csv into each device's store folder; where a folder has no
    baseline yet, the first repeat becomes it. Returns the folders written."""
    written = []
    keys = env.get("machine_keys") or {}
    for device in sorted(set(cal.noise["device"])):
        folder = store_dir(device, root=root, key=keys.get(device))
        folder.mkdir(parents=True, exist_ok=True)
        if not has_baseline(folder) and all(r.status in ("ok", NOT_APPLICABLE) for r in cal.records):
            with tempfile.TemporaryDirectory() as tmp:
                writer = RunWriter(Path(tmp), env)
                for record in cal.records:
                    writer.add(record)
                writer.finish(complete=True)
                promote(Path(tmp), root=root, source="bench calibrate (its first repeat)")
        mine = cal.noise[cal.noise["device"] == device]
        write_atomic(folder / NOISE_FILE, mine.to_csv(index=False))
        write_atomic(folder / CALIBRATION_FILE, cal.medians[cal.medians["device"] == device].to_csv(index=False))
        written.append(folder)
    return written

