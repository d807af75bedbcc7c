#!/usr/bin/env bash
# Train the GPU codec preset (configs/codec/gpu_v2.yaml) on a lent accelerator within ~10 minutes and bring the
# model back: synthesises the built-in data there (all CPU cores), trains under a wall-clock budget, and copies
# model.safetensors, metrics.jsonl and the log to $OUT (the device tool's return folder; ./gpu_out elsewhere).
#
#   run:   bash scripts/train_gpu.sh                       (on the device machine, from the repo root)
#   test:  LATENTMIX_GPU_SMOKE=1 bash scripts/train_gpu.sh (here, on the CPU: tiny data, 3 steps)
#
# The device image has torch but not soundfile/soxr/tinysoundfont: carry them as wheels in .whl/ (see the
# device tool's README); the script installs them into /tmp/site when .whl/ is there.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
WORK=${LATENTMIX_GPU_WORK:-/tmp/latentmix-gpu}
if [ -n "${LATENTMIX_GPU_SMOKE:-}" ]; then
  TRACKS=6; SECONDS_PER=4; BUDGET=60; EXTRA=(--steps 3 --set train.batch_size=2 --set train.num_workers=0
    --set train.val_every=0 --set train.adversarial_start=1 --set model.quantizer.kmeans_min_vectors=0)
else
  TRACKS=800; SECONDS_PER=20; BUDGET=${LATENTMIX_GPU_BUDGET:-480}; EXTRA=()
fi
rm -rf "$WORK/run"
"$PY" -m latentmix data synth --out "$WORK/data" --tracks "$TRACKS" --seconds "$SECONDS_PER" --seed 11 \
  --workers "$(nproc)" --quiet
"$PY" -m latentmix train codec --config gpu_v2 --data "$WORK/data" --out "$WORK/run" --seed 0 --quiet \
  --set train.max_seconds="$BUDGET" "${EXTRA[@]}" 2>&1 | tee "$OUT/train_gpu.log"
cp "$WORK/run/model.safetensors" "$OUT/codec_gpu_v2.safetensors"
cp "$WORK/run/metrics.jsonl" "$OUT/metrics.jsonl"
echo "model: $OUT/codec_gpu_v2.safetensors"
