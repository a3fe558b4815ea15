"""A slowdown that costs cache misses, not instructions: what time and instruction counts each say, and what the
gate's combined rule decides.

The workload gathers the 2**16 columns of a 2 MB table, larger than a core's L2 cache (`index_select` along
dim 1, so that the accuracy check's first rows of the input are whole rows), in an order fixed by its config: in
order (the baseline) or shuffled (the candidate). The kernel, the number of elements and the code path are the
same, so the instructions per call barely move; the shuffled gather misses the L2 cache on most reads, so the time
per call grows (small enough that callgrind counts it in seconds). In a throwaway git repository the config is
committed in order, then edited to shuffled:

1. `layerbench ab layout.py --base-ref HEAD --metric instructions --device cpu --threads 1`: the gate as CI runs it
   (the rows time decides are not counted);
2. `layerbench run layout.py --metric instructions --processes 3` on each version, then `layerbench compare` of the
   two with `--metric instructions` (counts alone), `--metric time` and `--metric auto` (the combined rule).

    .venv/bin/python tests/perf/layout_eval.py [--evidence docs/evidence/layout-cache-misses.txt]
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CONFIG = """
import torch
from torch import nn

from bench import Workload

ORDER = "{order}"


class Gather(nn.Module):
    \"\"\"Rows of the input gathered by a fixed index: in order, or shuffled (the same count of each).\"\"\"

    def __init__(self, rows: int) -> None:
        super().__init__()
        shuffled = torch.randperm(rows, generator=torch.Generator().manual_seed(0))
        index = torch.arange(rows) if ORDER == "in order" else shuffled
        self.register_buffer("index", index)

    def forward(self, x):
        return x.index_select(1, self.index)


WORKLOADS = [Workload(name="gather", module=lambda: Gather(1 << 16), input_shape=(8, 1 << 16))]
"""


def sh(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    print("$ " + " ".join(args), file=sys.stderr, flush=True)
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=3600)
    print((done.stdout + done.stderr).rstrip(), file=sys.stderr, flush=True)
    return done


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    bench = [sys.executable, "-m", "bench"]
    with tempfile.TemporaryDirectory(prefix="layout-eval-") as tmp:
        repo = Path(tmp)
        (repo / "layout.py").write_text(textwrap.dedent(CONFIG.format(order="in order")))
        for args in (["init", "-q"], ["add", "layout.py"],
                     ["-c", "user.name=eval", "-c", "user.email=eval@localhost", "commit", "-qm", "in order"]):
            subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
        env_path = f"PYTHONPATH={root}"
        print(f"(the bench package of {env_path.split('=')[1]} on PYTHONPATH)", file=sys.stderr)
        runs = {}
        for order in ("in order", "shuffled"):
            (repo / "layout.py").write_text(textwrap.dedent(CONFIG.format(order=order)))
            out = repo / "runs" / order.replace(" ", "-")
            sh([*bench, "run", "layout.py", "--metric", "instructions", "--processes", "3", "--min-processes", "3",
                "--device", "cpu", "--threads", "1", "--out", str(out), "--store", "none"], repo)
            runs[order] = out
        for metric in ("instructions", "time", "auto"):
            done = sh([*bench, "compare", str(runs["in order"]), str(runs["shuffled"]), "--metric", metric,
                       "--out", str(repo / f"cmp-{metric}")], repo)
            print(f"compare --metric {metric}: exit {done.returncode}; " + next(
                (line for line in done.stdout.splitlines() if line.startswith(("gather", " gather"))), "").strip())
        done = sh([*bench, "ab", "layout.py", "--base-ref", "HEAD", "--metric", "instructions", "--device", "cpu",
                   "--threads", "1", "--out", str(repo / "ab")], repo)
        print(f"ab --metric instructions: exit {done.returncode}; " + next(
            (line for line in done.stdout.splitlines() if "gather" in line), "").strip())
    return 0


if __name__ == "__main__":
    import os

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes docs/evidence/<name>.txt

    sys.exit(run(main))
