#!/usr/bin/env bash
# GPU benchmark of the language-model preset in one call (about 6-7 minutes): tokens/s and runs/minute of
# +experiment=lm_gpu with 1, 2 and 4 joblib jobs per GPU, and the GPU's utilisation from nvidia-smi
# (benchmarks/gpu_scale.py --experiment lm_gpu). Without a CUDA device it says so and exits 0.
#
# Here, once (the GPU image lacks Hydra and its joblib launcher; see ../shared/tools/gpu-wheels.sh):
#   bash ../shared/tools/gpu-wheels.sh
# Then on the device: run(command="bash benchmarks/lm_gpu.sh", carry=[".whl"], timeout_s=480)
# Results: $OUT/gpu_summary.md (the table for BENCHMARKS.md, with the GPU's name), $OUT/gpu_results.json,
# $OUT/gpu_log.txt, nvidia-smi samples $OUT/smi_*.csv.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit
fi
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore ENTRENAR_BENCH_HOME=${ENTRENAR_BENCH_HOME:-/tmp/entrenar-bench-gpu}
PYTHON=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT/gpu_log.txt"
timeout 420 "$PYTHON" benchmarks/gpu_scale.py --experiment lm_gpu --jobs-per-gpu 1 2 4 --out "$OUT" --budget-s 390 \
  2>&1 | tee -a "$OUT/gpu_log.txt"
