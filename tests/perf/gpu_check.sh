#!/usr/bin/env bash
# One prepared script for a lent GPU machine (`make gpu-check`): CUDA tests, the seed suite on CUDA, and the
# peer comparison (torch.utils.benchmark, triton do_bench), in a few minutes. Uses the image's python3
# (torch, triton, pandas, matplotlib, pytest-benchmark; nothing can be installed there).
# Writes everything under ${OUT:-results/gpu-check} and prints a short table.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-results/gpu-check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
$PY - <<'PYEOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
PYEOF
echo "== CUDA tests"
timeout 90 $PY -m pytest -q -m cuda -p no:cacheprovider tests 2>&1 | tail -5
echo "== seed suite on CUDA (device time and host time per call)"
timeout 90 $PY -m bench run seed --device cuda --out "$OUT" --budget-s 1 2>"$OUT/seed.log" | tee "$OUT/seed.txt"
echo "== harness vs torch.utils.benchmark vs do_bench (CUDA, interleaved)"
timeout 120 $PY tests/perf/peers.py --device cuda --rounds 3 --budget-s 0.4 2>"$OUT/peers.log" | tee "$OUT/peers.txt"
echo "== explained numbers: kernels per conv (heuristic vs cudnn_benchmark vs no-tf32), roof from kernels, clocks"
timeout 150 $PY -m bench run seed --device cuda --filter conv --variants cudnn_benchmark,no-tf32 --profile \
  --processes 2 --budget-s 0.5 --out "$OUT/explain" --store none >"$OUT/explain.txt" 2>"$OUT/explain.log"
$PY - "$OUT/explain" <<'PYEOF'
import glob, sys
import pandas as pd
(run,) = glob.glob(sys.argv[1] + "/*/results.csv")
f = pd.read_csv(run)
cols = ["workload", "variant", "median_s", "math", "math_from", "tensor_cores", "tf32", "sm_clock_mhz", "power_w",
        "temperature_c", "throttle", "peak_memory_bytes", "top_kernels"]
f["top_kernels"] = f["top_kernels"].astype(str).str[:90]
print(f[[c for c in cols if c in f]].to_string(index=False))
PYEOF
if [ -x tests/perf/gpu_variants.sh ]; then
  echo "== variant sweep and report"
  timeout 200 bash tests/perf/gpu_variants.sh "$OUT" 2>&1 | tail -20
fi
