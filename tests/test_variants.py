"""Variants: names, parsing, the skip matrix, settings restored, the timed pass, accuracy, graph replay (faked)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bench import Workload
from bench.cli.main import main
from bench.errors import BenchError
from bench.measure.apply import applied, cost, max_rel_diff
from bench.measure.clock import Block, graph_replay
from bench.measure.runner import run_one, run_suite
from bench.measure.sampling import Policy
from bench.store.frames import to_frame, to_samples
from bench.suite.config import load_suite
from bench.suite.plan import plan_one
from bench.suite.variants import DEFAULT, SWEEPS, Variant, parse_variants, skip_reason, sweep


def config_variants(specs):
    return load_suite(specs).variants

FAST = Policy(warmup_s=0.0, min_block_s=0.0, min_samples=3, floor_samples=3, max_samples=3, budget_s=1.0)


class CountingTimer:
    """Runs fn for real and counts the calls; every block 'takes' 1 ms per call. Never reads a real clock."""

    device = "cpu"

    def __init__(self) -> None:
        self.calls = 0
        self.clock = 0.0

    def now(self) -> float:
        return self.clock

    def time_block(self, fn, calls: int) -> Block:
        for _ in range(calls):
            fn()
        self.calls += calls
        self.clock += 1e-3 * calls
        return Block(calls=calls, device_s=1e-3 * calls, host_s=1e-3 * calls, enqueue_s=1e-4 * calls)


def _plan(module, shape, name="w", dtype="float32"):
    return plan_one(Workload(name=name, module=module, input_shape=shape, dtype=dtype), "test")


variants_st = st.builds(
    Variant, dtype=st.sampled_from(["", "float32", "bfloat16", "float16", "float64"]),
    tf32=st.sampled_from([None, True, False]), channels_last=st.booleans(), cudnn_benchmark=st.booleans(),
    backward=st.booleans(), compile=st.booleans(), cuda_graph=st.booleans(), threads=st.integers(0, 64))


@settings(max_examples=200, deadline=None)
@given(variants_st)
def test_a_variant_name_parses_back_to_the_same_variant(v):
    assert Variant.parse(v.name) == v
    assert (v.name == "default") == (v == DEFAULT)


def test_names_read_plainly():
    assert DEFAULT.name == "default"
    assert Variant(dtype="bfloat16", channels_last=True, cudnn_benchmark=True).name == \
        "bfloat16+channels_last+cudnn_benchmark"
    assert Variant(dtype="float32", tf32=False).name == "float32+no-tf32"
    assert Variant(threads=1, backward=True).pass_name == "forward+backward"


@pytest.mark.parametrize("text, needle", [("bfloat17", "'bfloat17'"), ("threads=0", "'threads=0'"),
                                          ("bfloat16+fast", "'fast'")])
def test_a_bad_variant_name_is_one_line_naming_the_part(text, needle, one_line):
    with pytest.raises(BenchError) as exc:
        parse_variants(f"default,{text}")
    one_line(str(exc.value), "--variants", needle, "expected")


def test_bad_fields_are_refused_at_construction(one_line):
    with pytest.raises(BenchError) as exc:
        Variant(dtype="int8")
    one_line(str(exc.value), "dtype", "'int8'")
    with pytest.raises(BenchError):
        Variant(threads=-1)


def test_sweeps_are_cross_products_without_duplicates_and_start_with_the_default():
    s = sweep(dtype=("", "bfloat16"), channels_last=(False, True), backward=(False, False))
    assert [v.name for v in s] == ["default", "channels_last", "bfloat16", "bfloat16+channels_last"]
    chosen = parse_variants("dtypes,bfloat16,standard")
    assert chosen[0] == DEFAULT and len(chosen) == len(set(chosen))
    assert set(SWEEPS["standard"]) <= set(chosen)


CPU4 = dict(device="cpu", input_ndim=4, workload_dtype="float32")
CUDA4 = dict(device="cuda", input_ndim=4, workload_dtype="float32")


@pytest.mark.parametrize("variant, where, reason", [
    (Variant(tf32=True), CPU4, "TF32 is a CUDA setting"),
    (Variant(tf32=False), CPU4, "TF32 is a CUDA setting"),
    (Variant(cudnn_benchmark=True), CPU4, "cudnn.benchmark is a CUDA setting"),
    (Variant(cuda_graph=True), CPU4, "CUDA graph replay needs a CUDA device"),
    (Variant(threads=1), CUDA4, "CPU thread count"),
    (Variant(threads=10 ** 6), CPU4, "exceeds"),
    (Variant(dtype="bfloat16", tf32=True), CUDA4, "TF32 applies to float32 only"),
    (Variant(tf32=True), dict(CUDA4, workload_dtype="float16"), "TF32 applies to float32 only"),
    (Variant(channels_last=True), dict(CPU4, input_ndim=2), "channels_last needs a 4-d input, this one is 2-d"),
    (Variant(cuda_graph=True, backward=True), CUDA4, "forward pass only"),
    (Variant(cuda_graph=True, compile=True), CUDA4, "not combined"),
])
def test_the_skip_matrix(variant, where, reason):
    assert reason in skip_reason(variant, **where)


@pytest.mark.parametrize("variant, where", [
    (DEFAULT, CPU4), (DEFAULT, CUDA4), (Variant(dtype="bfloat16", channels_last=True), CPU4),
    (Variant(dtype="float32", tf32=True, cudnn_benchmark=True, channels_last=True), CUDA4),
    (Variant(cuda_graph=True), CUDA4), (Variant(backward=True, threads=1), CPU4),
])
def test_what_runs_is_not_skipped(variant, where):
    assert skip_reason(variant, **where) == ""


def test_applied_sets_flags_and_threads_and_restores_them_even_on_error():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark,
              torch.get_num_threads(), torch.get_float32_matmul_precision())
    with pytest.raises(RuntimeError):
        with applied(Variant(tf32=not before[0], cudnn_benchmark=True, threads=1)):
            assert torch.backends.cuda.matmul.allow_tf32 is (not before[0])
            assert torch.backends.cudnn.benchmark is True
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark,
            torch.get_num_threads(), torch.get_float32_matmul_precision()) == before


def test_applied_restores_a_medium_matmul_precision():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        with applied(Variant(tf32=False)):
            assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)


def test_cost_of_the_backward_pass_and_of_a_narrower_dtype():
    # Linear(28, 10) on [256, 1, 28, 28]: 7168 rows; forward 2*7168*28*10; backward grad_x and grad_W as much each.
    plan = _plan(lambda: nn.Linear(28, 10), (256, 1, 28, 28))
    assert cost(plan, DEFAULT) == (4_014_080, plan.bytes_moved)
    flops, nbytes = cost(plan, Variant(backward=True))
    assert flops == 3 * 4_014_080
    assert nbytes == plan.bytes_moved + plan.output_bytes + 2 * plan.input_bytes + 2 * plan.param_bytes
    assert cost(plan, Variant(dtype="bfloat16")) == (4_014_080, plan.bytes_moved // 2)


class Eager(nn.Module):
    """Dynamo is told to leave this forward alone: torch.compile makes no graph of it."""

    @torch._dynamo.disable
    def forward(self, x):
        return x * 2


def test_every_compile_row_is_compiled_with_static_shapes_and_its_compile_time_kept(monkeypatch):
    """12 compile rows in one process: before, dynamo's recompile limit on the shared forward left rows 8-11
    eager while labelled compile, and the second row on compiled with dynamic shapes."""
    monkeypatch.setattr("bench.measure.runner.COMPILE_BACKEND", "eager")  # dynamo's tracing without inductor
    records = [run_one(_plan(lambda n=n: nn.Sequential(nn.Linear(8 + n, 8), nn.ReLU()), (4, 8 + n), name=f"m{n}"),
                       "cpu", timer=CountingTimer(), policy=FAST, variant=Variant(compile=True)) for n in range(12)]
    assert [r.status for r in records] == ["ok"] * 12, [r.reason for r in records]
    assert [r.graphs for r in records] == [1] * 12
    assert all(r.compile_s > 0 for r in records)
    assert torch._dynamo.config.automatic_dynamic_shapes is True  # nothing global was changed for the rows
    frame = to_frame(records)
    assert frame["graphs"].tolist() == [1] * 12 and (frame["compile_s"] > 0).all()


def test_a_compile_row_that_makes_no_graph_fails_instead_of_timing_eager_code(monkeypatch):
    monkeypatch.setattr("bench.measure.runner.COMPILE_BACKEND", "eager")
    record = run_one(_plan(Eager, (4, 8)), "cpu", timer=CountingTimer(), policy=FAST, variant=Variant(compile=True))
    assert record.status == "error" and "made no graph" in record.reason and record.measurement is None
    plain = run_one(_plan(Eager, (4, 8)), "cpu", timer=CountingTimer(), policy=FAST)
    assert plain.status == "ok" and plain.graphs is None and plain.compile_s is None


@pytest.mark.parametrize("groups", [1, 4, 144])
def test_backward_flops_of_a_grouped_conv_are_three_forwards(groups):
    """Conv2d(144, 144, 3, groups=g) on [32, 144, 56, 56], padding 1: each output element is a dot product of
    144/g channels x 9 taps, so the forward is 2 * 32*144*56*56 * (144/g)*9 FLOPs; grad_input and grad_weight
    have one multiply-add per forward multiply-add each. torch 2.13's own formula counted the depthwise one at
    146x its forward (grad_weight over all 144 channels)."""
    plan = _plan(lambda: nn.Conv2d(144, 144, 3, padding=1, groups=groups, bias=False), (32, 144, 56, 56))
    forward = 2 * 32 * 144 * 56 * 56 * (144 // groups) * 9
    assert plan.flops == forward
    assert cost(plan, Variant(backward=True))[0] == 3 * forward


def test_max_rel_diff_is_normwise():
    ref = torch.tensor([1.0, -4.0, 2.0], dtype=torch.float64)
    assert max_rel_diff(ref.float(), ref) == 0.0
    assert max_rel_diff(torch.tensor([1.0, -4.0, 3.0]), ref) == pytest.approx(0.25)
    assert max_rel_diff(torch.zeros(2), torch.zeros(2, dtype=torch.float64)) == 0.0


def test_run_one_records_the_variant_its_cost_accuracy_and_restores_threads():
    plan = _plan(lambda: nn.Conv2d(3, 4, 3), (2, 3, 8, 8), name="conv")
    threads = torch.get_num_threads()
    default = run_one(plan, "cpu", timer=CountingTimer(), policy=FAST)
    bf16 = run_one(plan, "cpu", timer=CountingTimer(), policy=FAST, variant=Variant(dtype="bfloat16", threads=1))
    assert torch.get_num_threads() == threads
    assert default.status == bf16.status == "ok"
    assert bf16.threads == 1 and bf16.variant.name == "bfloat16+threads=1" and bf16.math == "bfloat16"
    assert default.max_rel_diff < 1e-5 < 1e-4 < bf16.max_rel_diff < 5e-2  # bfloat16 keeps 8 bits of mantissa
    frame = to_frame([default, bf16])
    assert list(frame["variant"]) == ["default", "bfloat16+threads=1"]
    assert list(frame["dtype"]) == ["float32", "bfloat16"]
    assert frame["bytes"].iloc[1] * 2 == frame["bytes"].iloc[0]
    assert set(to_samples([default, bf16])["variant"]) == {"default", "bfloat16+threads=1"}


def test_backward_variant_times_forward_and_backward_and_gradients_do_not_accumulate():
    plan = _plan(lambda: nn.Linear(4, 3), (5, 4))
    record = run_one(plan, "cpu", timer=CountingTimer(), policy=FAST, variant=Variant(backward=True))
    assert record.status == "ok" and record.flops == 3 * 2 * 5 * 4 * 3
    assert to_frame([record])["pass"].iloc[0] == "forward+backward"


def test_variants_that_do_not_apply_give_n_a_rows_without_timing():
    timer = CountingTimer()
    plans = [_plan(lambda: nn.Linear(4, 3), (5, 4), name="lin")]
    records = run_suite(plans, ["cpu"], policy=FAST, timer_for=lambda d: timer,
                        variants=(DEFAULT, Variant(cuda_graph=True), Variant(channels_last=True)))
    assert [r.status for r in records] == ["ok", "not-applicable", "not-applicable"]
    assert "4-d" in records[2].reason
    assert timer.calls == records[0].measurement.warmup_calls + 3 * records[0].measurement.calls_per_sample


class FakeCuda:
    """Enough of torch.cuda for graph_replay: records what happens, in order."""

    def __init__(self, log):
        self.log = log
        log_ = log

        class Stream:
            def __init__(self, name="side"):
                self.name = name

            def wait_stream(self, other):
                log_.append(f"{self.name} waits {other.name}")

        class CUDAGraph:
            def replay(self):
                log_.append("replay")

        self.Stream, self.CUDAGraph = Stream, CUDAGraph
        self._current = Stream("current")

    def current_stream(self):
        return self._current

    @contextmanager
    def stream(self, s):
        self.log.append(f"on {s.name}")
        yield
        self.log.append(f"off {s.name}")

    @contextmanager
    def graph(self, g):
        self.log.append("capture")
        yield
        self.log.append("captured")


def test_graph_replay_warms_up_on_a_side_stream_captures_once_then_only_replays():
    log = []

    def fn():
        log.append("fn")
        return "out"

    replay = graph_replay(fn, warmup_calls=2, cuda=FakeCuda(log))
    assert log == ["side waits current", "on side", "fn", "fn", "off side", "current waits side",
                   "capture", "fn", "captured"]
    log.clear()
    assert [replay() for _ in range(3)] == ["out"] * 3
    assert log == ["replay"] * 3


def test_a_config_may_declare_variants(repo_root, write_config, one_line):
    assert Variant(cuda_graph=True) in config_variants(["variants"])
    bad = write_config("from bench import Workload\nWORKLOADS = []\nVARIANTS = ['bfloat16', 3]\n")
    with pytest.raises(BenchError) as exc:
        config_variants([str(bad)])
    one_line(str(exc.value), "VARIANTS[1]", "int")


def test_cli_run_with_variants_writes_n_a_rows_and_succeeds(tmp_path, capsys):
    assert main(["run", "smoke", "--device", "cpu", "--filter", "smoke-linear", "--budget-s", "0.02",
                 "--warmup-s", "0", "--min-samples", "3", "--variants", "bfloat16,cuda_graph",
                 "--out", str(tmp_path)]) == 0
    import pandas as pd

    run = next(tmp_path.iterdir())
    frame = pd.read_csv(run / "results.csv")
    assert list(frame["variant"]) == ["default", "bfloat16", "cuda_graph"]
    assert list(frame["status"]) == ["ok", "ok", "not-applicable"]
    assert main(["run", "smoke", "--variants", "float33", "--out", str(tmp_path)]) == 2
    assert "float33" in capsys.readouterr().err


@pytest.mark.cuda
def test_on_a_real_gpu_graph_replay_tf32_and_backward_variants_run_and_say_their_math():
    from bench.measure.clock import CudaTimer

    linear = _plan(lambda: nn.Linear(28, 10), (256, 1, 28, 28))
    graph = run_one(linear, "cuda", timer=CudaTimer(), policy=FAST, variant=Variant(cuda_graph=True))
    assert graph.status == "ok", graph.reason
    assert graph.math == "float32" and graph.max_rel_diff < 1e-5  # matmuls keep float32 by default
    conv = _plan(lambda: nn.Conv2d(3, 8, 3), (4, 3, 16, 16))
    strict = run_one(conv, "cuda", timer=CudaTimer(), policy=FAST, variant=Variant(dtype="float32", tf32=False))
    assert strict.status == "ok" and strict.math == "float32" and strict.max_rel_diff < 1e-5
    assert run_one(conv, "cuda", timer=CudaTimer(), policy=FAST, variant=Variant(tf32=True)).math == "tf32"
    bwd = run_one(conv, "cuda", timer=CudaTimer(), policy=FAST,
                  variant=Variant(dtype="bfloat16", channels_last=True, cudnn_benchmark=True, backward=True))
    assert bwd.status == "ok", bwd.reason
    assert torch.backends.cudnn.benchmark is False


@pytest.mark.cuda
def test_quick_cuda_probe_finds_tf32_and_bfloat16_above_float32(tmp_path):
    from bench.measure.peaks import peaks_for

    p = peaks_for("cuda", quick=True, cache_dir=tmp_path)
    assert p.threads == 0 and p.bytes_per_s > 1e11
    assert p.flops_per_s["bfloat16"] > p.flops_per_s["float32"]


# ---------------------------------------------------------------- cache state
def test_last_level_cache_is_the_highest_level_linux_lists(tmp_path):
    from bench.measure.apply import last_level_cache_bytes

    base = tmp_path / "sys/devices/system/cpu/cpu0/cache"
    for index, level, size in (("index0", 1, "32K"), ("index2", 2, "1024K"), ("index3", 3, "32768K")):
        (base / index).mkdir(parents=True)
        (base / index / "level").write_text(f"{level}\n")
        (base / index / "size").write_text(f"{size}\n")
    assert last_level_cache_bytes("cpu", root=tmp_path) == 32 << 20
    assert last_level_cache_bytes("cpu", root=tmp_path / "nothing") == 32 << 20  # the fallback


def test_cold_inputs_span_twice_the_cache_and_a_large_input_is_its_own_copy():
    from bench.measure.apply import cold_inputs

    x = torch.randn(256, 1024)  # 1 MiB
    copies = cold_inputs(x, 4 << 20)
    assert len(copies) == 8 and copies[0] is x and all(torch.equal(c, x) for c in copies)
    assert len({c.data_ptr() for c in copies}) == 8
    assert cold_inputs(x, 1 << 18) == [x]


SEEN: list[int] = []


class Seen(nn.Module):
    """Records the storage of every input it is called on (in SEEN)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 64)

    def forward(self, x):
        SEEN.append(x.data_ptr())
        return self.lin(x)


@pytest.mark.parametrize("backward", [False, True])
def test_a_cold_row_takes_the_next_copy_at_each_call_and_says_so(monkeypatch, backward):
    # 2 x 8 KiB over inputs of 4 KiB: 4 copies
    monkeypatch.setattr("bench.measure.runner.last_level_cache_bytes", lambda device: 8 << 10)
    plan = _plan(Seen, (16, 64))
    cold = Policy(warmup_s=0.0, min_block_s=0.0, min_samples=3, floor_samples=3, max_samples=3, budget_s=1.0,
                  cache="cold")
    SEEN.clear()
    record = run_one(plan, "cpu", timer=CountingTimer(), policy=cold, variant=Variant(backward=backward))
    assert record.status == "ok" and record.cache == "cold", record.reason
    assert len(set(SEEN[-5:-1])) == 4, SEEN  # the last timed calls cycle through the 4 copies
    assert to_frame([record])["cache"].tolist() == ["cold"]
    SEEN.clear()
    warm = run_one(plan, "cpu", timer=CountingTimer(), policy=FAST, variant=Variant(backward=backward))
    assert warm.cache == "warm" and len(set(SEEN[-4:])) == 1  # the same input, call after call


def test_cold_and_warm_runs_are_not_compared_and_old_runs_were_warm():
    from bench.measure.env import env_differences

    (diff,) = [d for d in env_differences({"cache": "warm"}, {"cache": "cold"}, devices={"cpu"}) if d.field == "cache"]
    assert diff.blocking
    assert not [d for d in env_differences({}, {"cache": "warm"}, devices={"cpu"}) if d.field == "cache"]
