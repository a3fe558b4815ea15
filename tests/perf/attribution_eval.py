"""Attribution evidence: five models measured layer by layer and whole through the CLI, each in its own
`layerbench run --model` process, then `layerbench attribution` on its run folder. The table per model says what
the sum of its isolated layers is against the whole model's time, and what lies outside the layers.

    python tests/perf/attribution_eval.py --evidence docs/evidence/attribution-models.txt
    python tests/perf/attribution_eval.py --processes 3 --budget-s 0.5 --threads 1   # the defaults

Never part of `make test`: it times real models (minutes on a 2-core CPU).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evidence import ROOT, run  # the evidence file's writer, beside this script

# (model spec, inputs, label): small inputs so that a CPU run of each takes a minute or two
MODELS = [
    ("torchvision.models:resnet18", ["1,3,224,224"], "resnet18"),
    ("torchvision.models:mobilenet_v3_small", ["1,3,224,224"], "mobilenet_v3_small"),
    ("torchvision.models:alexnet", ["8,3,227,227"], "alexnet"),
    ("torchvision.models:vit_b_16", ["1,3,224,224"], "vit_b_16"),
    ("tests.perf.attribution_eval:fashion_mnist", ["256,1,28,28"], "fashion-mnist"),
]


def fashion_mnist():
    """The seed's Fashion-MNIST network: Flatten, then Linear(784, 10)."""
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per worker (1: a busy neighbour, even a "
                        "test run, does not leave a thread waiting for a descheduled one)")
    parser.add_argument("--out", default="", help="keep the run folders under this folder (default: a temporary one)")
    parser.add_argument("--only", default="", help="comma-separated labels of the models to run (default: all)")
    parser.add_argument("--tables-only", action="store_true", help="with --out: print the tables of the run folders "
                        "kept there by an earlier call (after `layerbench peaks` measured the roofs), timing nothing")
    args = parser.parse_args()
    status = 0
    chosen = [m for m in MODELS if not args.only or m[2] in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="attribution-eval-") as tmp:
        for spec, inputs, label in chosen:
            out = Path(args.out or tmp) / label
            if args.tables_only:
                _table(out, label, inputs, args, took_s=float("nan"))
                continue
            given = [a for i in inputs for a in ("--input", i)]
            command = [sys.executable, "-m", "bench", "run", "--model", spec, *given,
                       "--name", label, "--device", "cpu", "--threads", str(args.threads), "--processes",
                       str(args.processes), "--budget-s", str(args.budget_s), "--store", "none", "--out", str(out)]
            if spec.startswith("torchvision"):
                command += ["--model-arg", "weights=None"]
            started = time.perf_counter()
            ran = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            took_s = time.perf_counter() - started
            print(f"== {label}: layerbench run --model {spec} --input {' '.join(inputs)}: exit {ran.returncode} in "
                  f"{took_s:.0f} s", file=sys.stderr)
            print(ran.stderr.strip()[-3000:], file=sys.stderr)
            if ran.returncode != 0:
                status = 1
                continue
            _table(out, label, inputs, args, took_s=took_s)
    return status


def _table(out: Path, label: str, inputs: list[str], args, *, took_s: float) -> None:
    """`layerbench attribution` of one model's run folder, printed under its heading."""
    table = subprocess.run([sys.executable, "-m", "bench", "attribution", str(out), "--top", "0"], cwd=ROOT,
                           capture_output=True, text=True)
    took = f", run took {took_s:.0f} s" if took_s == took_s else ""
    print(f"## {label} ({' '.join(inputs)}, {args.processes} processes, {args.threads} thread{took})")
    print(table.stdout.strip() or table.stderr.strip())
    print()


if __name__ == "__main__":
    sys.exit(run(main))
