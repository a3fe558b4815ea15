"""Every number explained: clocks and throttling (NVML faked), CPU frequency, other processes' load during a probe,
the kernels a row ran (torch.profiler, real on the CPU; CUDA names faked) and the roof decided from them."""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from bench import api
from bench.cli.main import main
from bench.measure import env as envmod
from bench.measure.apply import TF32_MIN_ERROR, math_that_ran
from bench.measure.clocks import HardwareState, OthersBusy, Sampler, cpu_mhz, read_gpu, summarize_gpu
from bench.measure.kernels import Kernel, KernelProfile, kernels_of, profile_calls, what_ran
from bench.measure.roofs import Peaks
from bench.report.build import build_report
from bench.store.folder import Run
from bench.store.peaks import from_json

CONFIG = """
import functools
from torch import nn
from bench import Workload

WORKLOADS = [
    Workload(name="lin", module=functools.partial(nn.Linear, 64, 32), input_shape=(16, 64)),
    Workload(name="flat", module=nn.Flatten, input_shape=(4, 8)),
]
"""


# ---------------------------------------------------------------- CPU frequency
def test_cpu_mhz_reads_cpufreq_of_the_cpus_this_process_may_use(tmp_path, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 2})
    for cpu, khz in ((0, 2_000_000), (1, 9_000_000), (2, 3_000_000)):
        (tmp_path / f"cpu{cpu}" / "cpufreq").mkdir(parents=True)
        (tmp_path / f"cpu{cpu}" / "cpufreq" / "scaling_cur_freq").write_text(f"{khz}\n")
    assert cpu_mhz(sysfs=tmp_path, cpuinfo=tmp_path / "none") == 2500.0  # cpu1 is not ours


def test_cpu_mhz_falls_back_to_proc_cpuinfo_and_to_none(tmp_path, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {1})
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu MHz\t\t: 1000.0\n\nprocessor\t: 1\ncpu MHz\t\t: 2596.096\n")
    assert cpu_mhz(sysfs=tmp_path / "nosys", cpuinfo=info) == pytest.approx(2596.096)
    assert cpu_mhz(sysfs=tmp_path / "nosys", cpuinfo=tmp_path / "missing") is None


def test_a_cpu_row_records_the_frequency_before_and_after():
    readings = iter([2000.0, 3000.0])
    with Sampler("cpu", cpu_reader=lambda: next(readings)) as s:
        pass
    assert s.state.cpu_mhz == 2500.0 and s.state.sm_clock_mhz is None


# ---------------------------------------------------------------- GPU clocks through NVML (faked)
class FakeNvml:
    """pynvml's calls Sampler uses, answering from a script of samples."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    def __init__(self, samples):
        self.samples, self.i, self.handles = samples, 0, []

    def _now(self):
        return self.samples[min(self.i, len(self.samples) - 1)]

    def nvmlDeviceGetHandleByUUID(self, uuid):
        raise RuntimeError("no such call on this NVML")

    def nvmlDeviceGetHandleByIndex(self, index):
        self.handles.append(index)
        return f"gpu{index}"

    def nvmlDeviceGetClockInfo(self, handle, which):
        return self._now()[0 if which == self.NVML_CLOCK_SM else 1]

    def nvmlDeviceGetPowerUsage(self, handle):
        return self._now()[2] * 1000  # mW

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return self._now()[3]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        value = self._now()[4]
        self.i += 1
        return value


def test_gpu_samples_give_median_clocks_the_hottest_temperature_and_the_throttled_share():
    nvml = FakeNvml([(1980, 2619, 400, 50, 0x1), (1980, 2619, 700, 61, 0x4), (1500, 2619, 700, 70, 0x4 | 0x20),
                     (1980, 2619, 690, 65, 0x0)])
    with Sampler("cuda", nvml=nvml, interval_s=3600) as s:  # the thread never fires: start and end samples only
        nvml.i = 2
    state = s.state
    assert nvml.handles == [0] and state.samples == 2
    assert state.sm_clock_mhz == pytest.approx((1980 + 1500) / 2) and state.temperature_c == 70
    assert state.power_w == pytest.approx(550.0)  # median of 400 W (idle start) and 700 W
    assert state.throttle == "sw_power_cap,sw_thermal" and state.throttled_share == 0.5


def test_idle_application_clocks_and_sync_boost_are_not_throttling():
    summary = summarize_gpu([(1980, 2619, 300.0, 40.0, 0x1 | 0x2 | 0x10 | 0x100)] * 3)
    assert summary["throttle"] == "" and summary["throttled_share"] == 0.0


def test_the_sampler_thread_samples_while_the_row_is_measured():
    import threading

    nvml = FakeNvml([(1980, 2619, 500, 50, 0)] * 1000)
    third = threading.Event()
    read = lambda n, h: (third.set() if n.i >= 3 else None, read_gpu(n, h))[1]  # noqa: E731 - a one-line fake reader
    with Sampler("cuda", nvml=nvml, read=read, interval_s=0.001) as s:
        assert third.wait(30)  # the thread took samples while the block ran, however slow the machine
    assert s.state.samples >= 4  # the start, two or more from the thread, the end


def test_without_nvml_or_on_a_failing_query_the_row_keeps_no_clocks(monkeypatch):
    monkeypatch.setattr("bench.measure.clocks._nvml", lambda: None)
    with Sampler("cuda") as s:
        pass
    assert s.state == HardwareState()

    class Broken(FakeNvml):
        def nvmlDeviceGetClockInfo(self, handle, which):
            raise RuntimeError("GPU is lost")

    with Sampler("cuda", nvml=Broken([(0, 0, 0, 0, 0)]), interval_s=3600) as s:
        pass
    assert s.state.samples == 0 and s.state.sm_clock_mhz is None


def test_a_row_across_processes_reports_medians_the_hottest_and_every_reason():
    from bench.measure.record import Record
    from bench.measure.sampling import Measurement
    from bench.store.frames import to_frame
    from bench.suite.config import load_config
    from bench.suite.plan import plan_one

    declared = load_config("smoke").declared[0]
    m = Measurement(device_s=(1e-3,) * 3, host_s=(1e-3,) * 3, enqueue_s=(0.0,) * 3, calls_per_sample=1,
                    warmup_calls=1, first_call_s=1e-3, stop_reason="budget")
    make_record = lambda process: Record(plan=plan_one(declared.workload, declared.source), device="cuda",  # noqa: E731 - a one-line record factory
                                         device_name="fake", threads=1, status="ok", measurement=m, process=process)

    states = [HardwareState(sm_clock_mhz=1900, power_w=600, temperature_c=60, throttle="sw_power_cap",
                            throttled_share=0.2, samples=10),
              HardwareState(sm_clock_mhz=1980, power_w=620, temperature_c=71, throttle="hw_thermal",
                            throttled_share=0.0, samples=10),
              HardwareState(sm_clock_mhz=1970, power_w=610, temperature_c=65, throttle="", throttled_share=0.1,
                            samples=10)]
    frame = to_frame([replace(make_record(process=i), hardware=s) for i, s in enumerate(states)])
    row = frame.iloc[0]
    assert row["sm_clock_mhz"] == 1970 and row["power_w"] == 610 and row["temperature_c"] == 71
    assert row["throttle"] == "hw_thermal,sw_power_cap" and row["throttled_share"] == pytest.approx(0.1)


# ---------------------------------------------------------------- other processes during a probe
def _stat(busy: int, idle: int) -> str:
    return f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n"


def _self(utime: int, stime: int) -> str:
    return "1234 (python (x) y) S " + " ".join(["0"] * 10) + f" {utime} {stime} 0 0 20 0 1\n"


def test_others_busy_counts_the_cores_other_processes_kept_busy(tmp_path):
    stat, own = tmp_path / "stat", tmp_path / "self"
    stat.write_text(_stat(1000, 1000))
    own.write_text(_self(100, 0))
    with OthersBusy(stat=stat, own=own, cpus=4) as o:
        stat.write_text(_stat(1000 + 300, 1000 + 100))  # 400 ticks: 300 busy, 100 of them ours
        own.write_text(_self(180, 20))
    assert o.cores == pytest.approx(200 / 400 * 4)


def test_others_busy_is_none_without_proc(tmp_path):
    with OthersBusy(stat=tmp_path / "none", own=tmp_path / "none") as o:
        pass
    assert o.cores is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg") / "cfg.py"
    cfg.write_text(CONFIG)
    return api.run(str(cfg), device="cpu", budget_s=0.02, warmup_s=0, min_samples=3, processes=0, store="none")


def test_a_probe_counts_the_others_demand_before_it_as_well_as_during_it(monkeypatch):
    """During the probe other processes only get what it leaves them, so their demand is watched first too."""
    from bench.measure import probe as probemod

    readings = iter([2.0, 1.0])  # before: two busy loops; during: they got one core of two

    class Fake:
        def __init__(self):
            self.cpus, self.cores = 2, None

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.cores = next(readings)

    monkeypatch.setattr(probemod, "OthersBusy", Fake)
    monkeypatch.setattr(probemod, "_measure_roofs", lambda *a: ({"float32": 1e9}, 1e9))
    peaks = probemod.probe("cpu", quick=True)
    assert peaks.others_busy_cores == 2.0 and peaks.cores == 2 and peaks.busy


def test_peaks_taken_on_a_busy_machine_are_flagged_kept_and_said(tiny_run):
    busy = Peaks(device="cpu", machine_key="k", device_name="n", threads=2, flops_per_s={"float32": 1e11},
                 bytes_per_s=1e10, others_busy_cores=1.5, cores=2)
    quiet = replace(busy, others_busy_cores=0.2)
    assert busy.busy and not quiet.busy and not replace(busy, others_busy_cores=None).busy
    assert "other processes busy on 1.5 of 2 cores (BUSY: roofs low)" in busy.provenance
    from dataclasses import asdict

    assert from_json(asdict(busy), where="t") == busy
    key, threads = tiny_run.env["machine_keys"]["cpu"], int(tiny_run.results["threads"].iloc[0])
    busy, quiet = (replace(p, machine_key=key, threads=threads) for p in (busy, quiet))
    report = build_report([tiny_run], peaks=[busy])
    assert any("kept 1.5 of its 2 cores busy" in n for n in report.notes)
    assert not any("busy" in n for n in build_report([tiny_run], peaks=[quiet]).notes)


def _ran_on(key: str, threads: int = 2) -> Run:
    results = pd.DataFrame([dict(workload="w", device="cpu", dtype="float32", status="ok", threads=threads,
                                 median_s=1e-3, flops=1e6, bytes=1e5)])
    return Run(results=results, samples=pd.DataFrame(columns=["workload", "device", "dtype", "sample", "device_s"]),
               env={"machine_keys": {"cpu": key}})


def test_a_busy_cached_probe_is_taken_again_when_probing_is_allowed(tmp_path, monkeypatch):
    from bench.store import peaks as peakstore

    key = envmod.machine_key("cpu")
    threads = torch.get_num_threads()
    old = Peaks(device="cpu", machine_key=key, device_name="n", threads=threads, flops_per_s={"float32": 1e10},
                bytes_per_s=1e9, others_busy_cores=2.0, cores=2)
    peakstore.save_cached(tmp_path, old)
    new = replace(old, flops_per_s={"float32": 5e10}, others_busy_cores=0.1)
    calls = []
    monkeypatch.setattr("bench.api.reporting.probe", lambda *a, **k: calls.append(1) or new)
    assert api.gather_peaks([_ran_on(key, threads)], root=tmp_path) == [old]  # not asked to probe: flagged, kept
    assert api.gather_peaks([_ran_on(key, threads)], root=tmp_path, probe_missing=True) == [new] and calls == [1]
    assert peakstore.cached(tmp_path, key, threads=threads) == new


# ---------------------------------------------------------------- kernels that ran
def _event(key, count, us, cuda):
    return SimpleNamespace(key=key, count=count, device_type="DeviceType.CUDA" if cuda else "DeviceType.CPU",
                           self_device_time_total=us if cuda else 0, self_cpu_time_total=0 if cuda else us)


def test_kernels_of_a_cuda_row_are_its_device_events_per_call_largest_first():
    events = [_event("aten::conv2d", 3, 900, False),
              _event("sm90_xmma_fprop_implicit_gemm_tf32f32_tf32f32", 3, 600, True),
              _event("void at::native::elementwise_kernel", 6, 150, True), _event("Memset", 3, 0, True)]
    kernels = kernels_of(events, "cuda", calls=3)
    assert [k.name for k in kernels] == ["sm90_xmma_fprop_implicit_gemm_tf32f32_tf32f32",
                                         "void at::native::elementwise_kernel"]
    assert (kernels[0].calls == 1 and kernels[0].time_s == pytest.approx(200e-6)
            and kernels[0].share == pytest.approx(0.8))
    assert kernels[1].calls == 2
    assert what_ran(kernels, "cuda") == (True, True)


@pytest.mark.parametrize("names, expected", [
    (["ampere_sgemm_128x64_tn"], (False, False)),  # float32 on CUDA cores
    (["ampere_tf32_s1688gemm_tf32_128x128_32x3_nn"], (True, True)),
    (["cutlass_80_tensorop_s1688gemm_128x128_32x3_nn_align4"], (True, True)),
    (["sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"], (True, False)),
    (["volta_h884gemm_64x64_ldg8_nn"], (True, False)),
    (["triton_poi_fused_addmm_0", "triton_tem_fused_mm_1"], (None, None)),  # names say nothing of the unit
])
def test_tensor_cores_and_tf32_are_read_from_kernel_names(names, expected):
    assert what_ran(tuple(Kernel(n, 1, 1e-6, 1 / len(names)) for n in names), "cuda") == expected


def test_a_cpu_row_is_profiled_for_real_with_a_trace_perfetto_opens():
    module, x = torch.nn.Linear(64, 32), torch.randn(16, 64)
    with torch.inference_mode():
        profile = profile_calls(lambda: module(x), "cpu")
    names = [k.name for k in profile.kernels]
    assert "aten::addmm" in names and sum(k.share for k in profile.kernels) == pytest.approx(1.0)
    assert next(k for k in profile.kernels if k.name == "aten::addmm").calls == 1
    assert (profile.tensor_cores, profile.tf32) == (None, None)
    events = json.loads(profile.trace)["traceEvents"]
    assert any(e.get("name") == "aten::addmm" for e in events)
    assert "aten::addmm" in profile.top()


# ---------------------------------------------------------------- the roof a float32 row is held to
def test_the_roof_comes_from_kernels_then_accuracy_then_flags():
    assert math_that_ran("bfloat16", max_rel_diff=1e-3, tf32_kernels=None) == ("bfloat16", "dtype")
    assert math_that_ran("tf32", max_rel_diff=1e-3, tf32_kernels=False) == ("float32", "kernels")
    assert math_that_ran("tf32", max_rel_diff=1e-7, tf32_kernels=True) == ("tf32", "kernels")
    # the H200 sample: seed-conv11's default row had the no-TF32 row's error (5.2e-7): it did not run TF32
    assert math_that_ran("tf32", max_rel_diff=5.2e-7, tf32_kernels=None) == ("float32", "accuracy")
    assert math_that_ran("tf32", max_rel_diff=4e-4, tf32_kernels=None) == ("tf32", "flags")
    assert math_that_ran("tf32", max_rel_diff=None, tf32_kernels=None) == ("tf32", "flags")
    assert TF32_MIN_ERROR < 2 ** -11  # below TF32's unit roundoff


def test_tf32_errors_sit_above_the_threshold_and_float32_errors_below_it():
    """The accuracy rule on real numbers: float32 against float64, and float32 inputs rounded to TF32's 10 mantissa
    bits (what a TF32 kernel multiplies), for a short and a long reduction."""
    from bench.measure.apply import max_rel_diff

    torch.manual_seed(0)
    for k in (27, 4096):
        a, b = torch.randn(64, k), torch.randn(k, 64)
        ref = a.double() @ b.double()
        to_tf32 = lambda t: (t.view(torch.int32) & ~0x1FFF).view(torch.float32)  # noqa: E731 - drop 13 of 23 bits
        assert max_rel_diff(a @ b, ref) < TF32_MIN_ERROR
        assert max_rel_diff(to_tf32(a) @ to_tf32(b), ref) > TF32_MIN_ERROR


# ---------------------------------------------------------------- through the CLI
@pytest.mark.parametrize("processes", ["0", "1"])
def test_run_profile_writes_kernels_traces_and_the_report_lists_them(tmp_path, capsys, processes):
    cfg = tmp_path / "cfg.py"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--device", "cpu", "--profile", "--budget-s", "0.02", "--warmup-s", "0",
                 "--min-samples", "3", "--processes", processes, "--out", str(out), "--store", "none"]) == 0
    (run_dir,) = out.iterdir()
    results = pd.read_csv(run_dir / "results.csv")
    lin = results.set_index("workload").loc["lin"]
    assert "aten::addmm" in lin["top_kernels"] and lin["cpu_mhz"] > 0 and lin["math_from"] == "dtype"
    kernels = pd.read_csv(run_dir / "kernels.csv")
    assert set(kernels["workload"]) == {"lin", "flat"}
    assert kernels.groupby("workload")["share"].sum().round(6).tolist() == [1.0, 1.0]
    traces = sorted(p.name for p in (run_dir / "profiles").iterdir())
    assert traces == ["flat__cpu__float32__default.json", "lin__cpu__float32__default.json"]
    assert "traceEvents" in json.loads((run_dir / "profiles" / traces[1]).read_text())
    assert json.loads((run_dir / "env.json").read_text())["settings"]["profile"] is True
    capsys.readouterr()
    assert main(["report", str(run_dir), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Kernels that ran" in md and "aten\\:\\:addmm" in md and "CPU frequency while the CPU rows ran" in md


def test_without_profile_no_kernels_are_recorded(tiny_run):
    assert tiny_run.results["top_kernels"].isna().all() and tiny_run.results["tensor_cores"].isna().all()
    assert tiny_run.results["cpu_mhz"].notna().all() or sys.platform != "linux"


def test_a_kernel_profile_names_its_top_kernels():
    p = KernelProfile(kernels=(Kernel("a" * 80, 1, 3e-6, 0.75), Kernel("b", 2, 1e-6, 0.25)), trace="{}")
    assert p.top() == f"{'a' * 60} (75%, 1x); b (25%, 2x)"
