"""What the machine and the libraries were when a run was taken: stored as env.json with the run."""
from __future__ import annotations

import hashlib
import math
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    """`git ARGS` in the project being measured (the current directory's repository, else bench's own); "" when
    there is no git or no repository."""
    for where in (Path.cwd(), REPO):
        try:
            out = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        if out.returncode == 0:
            return out.stdout.strip()
    return ""


def git_commit() -> str:
    """The measured project's commit (12 hex digits, "-dirty" when tracked files changed), "" outside git."""
    commit = _git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return ""
    return commit + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")


def git_branch() -> str:
    """The measured project's branch ("" when detached or outside git; CI's detached checkouts: $GITHUB_HEAD_REF,
    $GITHUB_REF_NAME or $CI_COMMIT_REF_NAME when set)."""
    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"):
        if os.environ.get(name):
            return os.environ[name]
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    return "" if branch == "HEAD" else branch


def cuda_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""


def available_devices() -> list[str]:
    """The devices bench can time here: the CPU, and CUDA when torch sees a GPU."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def device_name(device: str) -> str:
    """The CUDA device's name for "cuda", the CPU model otherwise."""
    return cuda_name() if device == "cuda" else cpu_name()


def _cpuinfo_fields() -> list[str]:
    """What tells apart CPUs that share a generic model name ("Intel Xeon Processor", "AMD EPYC" in cloud VMs):
    the family, model, stepping, cache size and instruction-set flags of /proc/cpuinfo, and the memory size."""
    wanted = ("cpu family", "model", "stepping", "cache size", "flags")
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            name = name.strip()
            if name in wanted and name not in out:
                out[name] = value.strip()
        mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal:")), "")
        out["memory_gib"] = str(round(int(mem) / 2**20)) if mem.isdigit() else ""
    except OSError:
        pass
    return [out.get(k, "") for k in (*wanted, "memory_gib")]


def machine_key(device: str) -> str:
    """A stable key for 'this kind of machine and device': CPU model, core count, the CPU's family, model, stepping,
    cache and flags, the memory size, and the GPU's name. No hostname."""
    parts = [cpu_name(), str(os.cpu_count()), *_cpuinfo_fields()] + ([cuda_name()] if device == "cuda" else [])
    slug = "".join(c if c.isalnum() else "-" for c in device_name(device).lower())
    slug = "-".join(p for p in slug.split("-") if p)[:40]
    return f"{device}-{slug}-{hashlib.sha1('|'.join(parts).encode()).hexdigest()[:8]}"


def matmul_precision() -> str | None:
    """torch's float32 matmul precision, or None where torch refuses to say (legacy and new TF32 APIs mixed)."""
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:
        return None


def speed_probe() -> dict:
    """A quick speed probe of this machine, about 0.1 s, for telling "the machine differs" from "the code is
    slower" when a run is compared with a stored baseline: the median of 5 timings of a fixed pure-Python loop,
    and of a fixed 256 x 256 float32 matmul on one thread."""
    import time

    def median_of(fn) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return sorted(times)[2]

    a = torch.ones(256, 256)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        matmul_s = median_of(lambda: [a @ a for _ in range(10)])
    finally:
        torch.set_num_threads(threads)
    return dict(python_s=median_of(lambda: sum(range(300_000))), matmul_s=matmul_s)


# ---------------------------------------------------------------- the thread count a busy machine can give
BUSY_SAMPLE_S = 0.5  # how long busy_cores watches /proc/stat


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat's first line; None where there is none (not Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cores(seconds: float = BUSY_SAMPLE_S) -> float | None:
    """How many cores' worth the machine's processes kept busy over `seconds` (this process sleeps meanwhile, so
    it is the others'); the 1-minute load average where /proc/stat is missing; None where neither is known."""
    import time

    before = _cpu_times()
    if before is None:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    time.sleep(seconds)
    after = _cpu_times()
    if after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)


def choose_threads(*, cores: int, busy_cores: float | None, requested: int | None, default: int) -> tuple[int, str]:
    """The CPU threads a run uses, and why when it is not what was asked for or torch's default (else "").

    A parallel region waits for its slowest thread; on a machine whose other processes keep cores busy, a thread
    descheduled for a time slice stalls every call, and a row reads milliseconds for microseconds of work in every
    process alike, which no between-process statistic can see. So, with threads not given, a run uses the cores
    the others leave (at least 1): a core counts as taken when the others keep it more than half busy. Threads
    given (--threads) are kept, with a warning when they exceed the cores left."""
    if busy_cores is None:
        return requested or default, ""
    free = max(1, cores - math.floor(busy_cores + 0.5))
    busy = f"other processes keep {busy_cores:.1f} of {cores} cores busy"
    if requested is not None:
        if requested <= free:
            return requested, ""
        return requested, (f"{busy}: --threads {requested} kept, but a thread descheduled for another process "
                           "stalls every call (times may read far above the layer's)")
    if default <= free:
        return default, ""
    return free, f"{busy}: {free} thread{'s' if free > 1 else ''} instead of {default} (--threads sets it)"


def capture(*, devices: list[str], argv: list[str], threads: int) -> dict:
    """Versions, device names and numeric settings that change results (TF32, cudnn.benchmark, threads)."""
    has_cuda = torch.cuda.is_available()
    return {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "argv": argv,
        "git_commit": git_commit(),
        "git_branch": git_branch(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
        "cudnn": str(torch.backends.cudnn.version() or "") if has_cuda else "",
        "cpu_name": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "threads": threads,
        "cuda_device": cuda_name(),
        "devices": devices,
        "machine_keys": {d: machine_key(d) for d in devices},
        "allow_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "allow_tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": matmul_precision(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "speed_probe": speed_probe(),
    }


# ---------------------------------------------------------------- which settings make two runs incomparable
ENV_ALWAYS = ("torch", "threads", "float32_matmul_precision", "cache")  # change CPU and CUDA results alike
ENV_DEFAULTS = {"cache": "warm"}  # what a run recorded before the field existed was measured with
ENV_CUDA = ("cuda", "cudnn", "allow_tf32_matmul", "allow_tf32_cudnn", "cudnn_benchmark", "cudnn_deterministic")
ENV_INFO = ("git_commit", "python", "platform", "host", "complete")  # shown, never refused


@dataclass(frozen=True, kw_only=True)
class EnvDiff:
    """One setting that differs between two runs; `blocking` when results taken so should not be compared."""

    field: str
    baseline: str
    candidate: str
    blocking: bool


def env_differences(base_env: Mapping, cand_env: Mapping, *, devices: set[str]) -> list[EnvDiff]:
    """Settings that differ between two runs' env.json; `blocking` ones make a comparison meaningless."""
    checks = list(ENV_ALWAYS) + (["cpu_name", "cpu_count"] if "cpu" in devices else [])
    checks += (["cuda_device", *ENV_CUDA] if "cuda" in devices else [])
    out = []
    for name in checks + [f for f in ENV_INFO if f not in checks]:
        a, b = base_env.get(name, ENV_DEFAULTS.get(name)), cand_env.get(name, ENV_DEFAULTS.get(name))
        if a != b:
            out.append(EnvDiff(field=name, baseline=str(a), candidate=str(b), blocking=name in checks))
    return out
