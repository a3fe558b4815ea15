"""A device's peaks, the roofs of its roofline: frozen data, with where the figures came from.

Measured by bench.measure.probe, stored by bench.store.peaks, given by a config's PEAKS, read by the report.
"""
from __future__ import annotations

from dataclasses import dataclass, field

MAX_OTHERS_SHARE = 0.5  # of the cores busy with other processes during a probe: above it the peaks are flagged


@dataclass(frozen=True, kw_only=True)
class Peaks:
    """The roofs of one device: FLOP/s per math mode (float32, tf32, bfloat16, float16) and bytes/s.

    source: "probe", "quick probe", or "config <path>" (given, not measured); measured_utc, load_avg_1m
    and threads say under what conditions a probe took them (a busy machine gives low roofs).
    """

    device: str
    machine_key: str
    device_name: str
    threads: int  # CPU threads the figures hold for; 0 on CUDA
    flops_per_s: dict[str, float] = field(default_factory=dict)
    bytes_per_s: float = 0.0
    source: str = "probe"
    measured_utc: str = ""
    load_avg_1m: float | None = None
    # cores other processes kept busy while the probe ran (bench.measure.clocks.OthersBusy), of `cores` in all
    others_busy_cores: float | None = None
    cores: int = 0

    @property
    def busy(self) -> bool:
        """Measured while other processes kept more than MAX_OTHERS_SHARE of the cores busy: the roofs are low,
        so rows read closer to (or above) them than they are."""
        return self.others_busy_cores is not None and self.cores > 0 and \
            self.others_busy_cores > MAX_OTHERS_SHARE * self.cores

    def peak_flops_per_s(self, math: str) -> float:
        """The compute roof for a math mode; float32's when the device has no figure for it (tf32, or a half
        precision too slow to probe), except float64, whose roof is 2x (CPU) to 64x (consumer GPUs) below
        float32's: 0.0 (no roof) until peaks are probed with it."""
        if self.flops_per_s.get(math):
            return self.flops_per_s[math]
        return 0.0 if math == "float64" else self.flops_per_s.get("float32", 0.0)

    def ridge(self, math: str) -> float:
        """FLOP per byte where the memory roof meets the compute roof."""
        return self.peak_flops_per_s(math) / self.bytes_per_s if self.bytes_per_s > 0 else float("inf")

    @property
    def provenance(self) -> str:
        """Where the roofs came from, in words: "probe, 2026-12-02T04:00:00+00:00, load 0.4, 2 threads"."""
        parts = [self.source]
        if self.measured_utc:
            parts.append(self.measured_utc)
        if self.load_avg_1m is not None:
            parts.append(f"load {self.load_avg_1m:.2g}")
        if self.others_busy_cores is not None and self.cores:
            parts.append(f"other processes busy on {self.others_busy_cores:.1f} of {self.cores} cores"
                         + (" (BUSY: roofs low)" if self.busy else ""))
        if self.device == "cpu":
            parts.append(f"{self.threads} thread{'' if self.threads == 1 else 's'}")
        return ", ".join(parts)
