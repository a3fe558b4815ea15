"""What the machine and the libraries were when a run was taken: stored as env.json with the run."""
from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

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


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if out.returncode != 0:
        return ""
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def cuda_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""


def device_name(device: str) -> str:
    """The CUDA device's name for "cuda", the CPU model otherwise."""
    return cuda_name() if device == "cuda" else cpu_name()


def machine_key(device: str) -> str:
    """A stable key for 'this kind of machine and device': CPU model, core count, GPU name. No hostname."""
    parts = [cpu_name(), str(os.cpu_count())] + ([cuda_name()] if device == "cuda" else [])
    slug = "".join(c if c.isalnum() else "-" for c in device_name(device).lower())
    slug = "-".join(p for p in slug.split("-") if p)[:40]
    return f"{device}-{slug}-{hashlib.sha1('|'.join(parts).encode()).hexdigest()[:8]}"


def matmul_precision() -> str | None:
    """torch's float32 matmul precision, or None where torch refuses to say (legacy and new TF32 APIs mixed)."""
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:
        return None


def capture(*, devices: list[str], argv: list[str], threads: int) -> dict:
    """Versions, device names and numeric settings that change results (TF32, cudnn.benchmark, threads)."""
    has_cuda = torch.cuda.is_available()
    return {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "argv": argv,
        "git_commit": git_commit(),
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
    }


# ---------------------------------------------------------------- which settings make two runs incomparable
ENV_ALWAYS = ("torch", "threads", "float32_matmul_precision")  # change CPU and CUDA results alike
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
        a, b = base_env.get(name), cand_env.get(name)
        if a != b:
            out.append(EnvDiff(field=name, baseline=str(a), candidate=str(b), blocking=name in checks))
    return out
