#!/usr/bin/env bash
# The variant sweep on a lent GPU machine (called by gpu_check.sh, or by hand): peaks of this machine's CPU and
# GPU, the seed and conv2d suites on CUDA under a sweep of variants, then the report (report.html, report.md).
# Usage: bash tests/perf/gpu_variants.sh [OUT_DIR]   (default results/gpu-variants). Fits in about 150 s on an H100.
# Everything lands under OUT_DIR/variants/<run>/ ; the last line printed is that folder.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT_DIR=${1:-results/gpu-variants}
BUDGET_S=${BUDGET_S:-0.1}
DEVICE=${DEVICE:-cuda}      # DEVICE=cpu CONFIGS=smoke: a dry run of this script on a machine without a GPU
CONFIGS=${CONFIGS:-seed conv2d}
VARIANTS=${VARIANTS:-float32+no-tf32,float32+tf32,bfloat16,bfloat16+channels_last+cudnn_benchmark,float16+channels_last+cudnn_benchmark,cuda_graph,backward}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT_DIR/variants"

echo "== peaks (matrix products per dtype, device-to-device copy; cached under results/peaks/)"
timeout 60 $PY -m bench peaks --device all || echo "peaks failed (status $?): the report will probe or do without"

echo "== $CONFIGS on $DEVICE, variants: default,$VARIANTS (budget ${BUDGET_S} s per row)"
timeout 170 $PY -m bench run $CONFIGS --device "$DEVICE" --variants "$VARIANTS" --budget-s "$BUDGET_S" \
  --timeout-s 20 --out "$OUT_DIR/variants" 2>"$OUT_DIR/variants.log" | tail -n 140
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || echo "bench run exited $status (1: some rows did not run; 124: timed out, rows so far kept)"

run_dir=$(ls -td "$OUT_DIR"/variants/*/ 2>/dev/null | head -n 1)
if [ -z "$run_dir" ]; then
  echo "no run folder written; see $OUT_DIR/variants.log"; tail -n 5 "$OUT_DIR/variants.log"; exit 1
fi
echo "== report"
timeout 60 $PY -m bench report "$run_dir"
echo "$run_dir"
