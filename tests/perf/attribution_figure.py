"""docs/attribution.png: the attribution of a small Fashion-MNIST CNN measured on this machine's CPU.

The network's distinct layers are declared by hand here, as `bench.layers` lists them (its two identical 3x3
convolutions and the ReLUs that follow them are one workload each, with count 2), with the whole model as one
more workload; the model flattens with torch.flatten in its forward (a functional call outside every layer).
The run is real and short (in this process, one thread); the CPU's peaks come from a quick probe. Writes the
report into --out, the share chart to docs/attribution.png, and prints the attribution table (kept in
docs/evidence/attribution-cpu.txt).

    PYTHONPATH=$PWD .venv/bin/python tests/perf/attribution_figure.py --out /tmp/attribution
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import torch
from torch import nn

import bench
from bench.store.folder import Run

ROOT = Path(__file__).resolve().parents[2]
BATCH = 64
MODEL = "fmnist-cnn"


class FashionCNN(nn.Module):
    """conv 1->32, pool, two identical conv 32->32 blocks, pool, flatten (functional), fc 1568->128, fc 128->10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.act3 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.act4 = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act3(self.conv3(self.act2(self.conv2(x)))))
        return self.fc2(self.act4(self.fc1(torch.flatten(x, 1))))


def conv(cin: int, cout: int) -> nn.Module:
    return nn.Conv2d(cin, cout, 3, padding=1)


# workload -> (factory, input shape, count, paths, module type): one per distinct layer, then the model
LAYERS = {
    f"{MODEL}.conv1": (lambda: conv(1, 32), (BATCH, 1, 28, 28), 1, "conv1", "Conv2d"),
    f"{MODEL}.act1": (nn.ReLU, (BATCH, 32, 28, 28), 1, "act1", "ReLU"),
    f"{MODEL}.pool1": (lambda: nn.MaxPool2d(2), (BATCH, 32, 28, 28), 1, "pool1", "MaxPool2d"),
    f"{MODEL}.conv2": (lambda: conv(32, 32), (BATCH, 32, 14, 14), 2, "conv2;conv3", "Conv2d"),
    f"{MODEL}.act2": (nn.ReLU, (BATCH, 32, 14, 14), 2, "act2;act3", "ReLU"),
    f"{MODEL}.pool2": (lambda: nn.MaxPool2d(2), (BATCH, 32, 14, 14), 1, "pool2", "MaxPool2d"),
    f"{MODEL}.fc1": (lambda: nn.Linear(32 * 7 * 7, 128), (BATCH, 32 * 7 * 7), 1, "fc1", "Linear"),
    f"{MODEL}.act4": (nn.ReLU, (BATCH, 128), 1, "act4", "ReLU"),
    f"{MODEL}.fc2": (lambda: nn.Linear(128, 10), (BATCH, 128), 1, "fc2", "Linear"),
    MODEL: (FashionCNN, (BATCH, 1, 28, 28), 1, "", "FashionCNN"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/attribution", help="the folder the run and its report go into")
    parser.add_argument("--budget-s", type=float, default=1.0, help="sampling seconds per row")
    args = parser.parse_args()
    out = Path(args.out)
    workloads = [bench.Workload(name=n, module=f, input_shape=s) for n, (f, s, *_) in LAYERS.items()]
    run = bench.run(workloads, device="cpu", budget_s=args.budget_s, warmup_s=0.2, threads=1, processes=0,
                    out=out / "runs", store="none")
    results = run.results.assign(
        kind=["model" if w == MODEL else "layer" for w in run.results["workload"]], model=MODEL,
        count=[LAYERS[w][2] for w in run.results["workload"]], paths=[LAYERS[w][3] for w in run.results["workload"]],
        module_type=[LAYERS[w][4] for w in run.results["workload"]])
    run = Run(results=results, samples=run.samples, env=run.env, source=run.source, run_dirs=run.run_dirs)
    peaks = bench.peaks("cpu", threads=1, quick=True, root=out / "root")
    report = bench.report([run], out=out / "report", peaks=peaks, root=out / "root")
    [section] = report.models
    shares = next(c for c in section.figures if "share" in c)
    (ROOT / "docs" / "attribution.png").write_bytes(section.figures[shares])
    shutil.copy(out / "report" / "layers.csv", out / "layers.csv")
    table = report.attribution
    cols = ["workload", "kind", "count", "median_s", "total_s", "share", "layers_sum_s", "outside_s", "ratio",
            "verdict", "bound", "pct_of_roof"]
    print(f"{MODEL} at batch {BATCH} on {run.env.get('cpu_name')}, 1 thread, --budget-s {args.budget_s}; load "
          f"average before the report: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(table[cols].to_string(index=False))
    print(f"wrote {ROOT / 'docs' / 'attribution.png'} and {out / 'report'}")


if __name__ == "__main__":
    main()
