#!/usr/bin/env bash
# GPU benchmark in one call (about 6-7 minutes): runs/minute for +experiment=gpu_scale with 1, 2, 4, 8
# joblib jobs per GPU and the GPU's utilisation (benchmarks/gpu_scale.py), then the GPU placement test.
#
# Here, once (the GPU image lacks Hydra, its joblib launcher and mnist1d; see ../shared/tools/gpu-wheels.sh):
#   bash ../shared/tools/gpu-wheels.sh mnist1d==0.0.2.post1
# Then on the device: run(command="bash benchmarks/gpu.sh", carry=[".whl"], timeout_s=480)
# Results: $OUT/gpu_summary.md (the table for BENCHMARKS.md), $OUT/gpu_results.json, $OUT/gpu_log.txt,
# nvidia-smi samples $OUT/smi_*.csv.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore ENTRENAR_BENCH_HOME=/tmp/entrenar-bench-gpu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu_log.txt"
timeout 390 python3 benchmarks/gpu_scale.py --out "$OUT" --budget-s 360 2>&1 | tee -a "$OUT/gpu_log.txt"
timeout 45 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_launchers.py 2>&1 | tail -5 | tee -a "$OUT/gpu_log.txt"
