#!/usr/bin/env bash
# GPU check (issue 20): run on a GPU box before a paper-preset run. Trains V and M at the paper's
# shapes for 40 s per phase (float32 and --mixed-precision; V, M CarRacing, M Doom) on synthetic data
# made here, through the stages' own models and loaders, and prints frames/s, sequences/s and peak
# GPU memory per phase. Needs nothing from outside the machine; finishes in under 8 minutes.
#
# Usage: bench/gpu_check.sh [OUT_DIR]     (OUT_DIR gets gpu_check.json and gpu_check.txt; default .)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-.}"
mkdir -p "$OUT"
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
{
  echo "== $(date -u +%FT%TZ) $(hostname)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not found"
  timeout 450 "$PY" bench/gpu_check.py --seconds "${SECONDS_PER_PHASE:-40}" --require-gpu --out "$OUT/gpu_check.json"
} 2>&1 | tee "$OUT/gpu_check.txt"
