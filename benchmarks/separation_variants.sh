#!/usr/bin/env bash
# Train the separator variants of the comparison with one equal budget, two at a time (one core each):
# the seed's RQ / VQ / VAE codec separators, the latent-domain separator over the shipped codec, and the
# spectrogram-mask design, each STEPS steps of batch 8 x 2 s on the built-in data. Then run
#   python benchmarks/separation.py --data DATA --shipped --codec default \
#       --model rvq=runs/var_rvq/model.safetensors ... --write
set -euo pipefail
DATA=${DATA:-data/slakhlike}
STEPS=${STEPS:-150}
OUT=${OUT:-runs}
run() {  # name config [extra --set ...]
  local name=$1 cfg=$2; shift 2
  rm -rf "$OUT/var_$name"
  OMP_NUM_THREADS=1 python -m latentmix train separator --config "$cfg" --data "$DATA" --out "$OUT/var_$name" \
    --steps "$STEPS" --seed 0 --quiet --set train.batch_size=8 --set train.segment_seconds=2.0 \
    --set train.val_every="$STEPS" --set train.ckpt_every="$STEPS" "$@" > "$OUT/var_$name.log" 2>&1
  echo "$name: $(tail -n 1 "$OUT/var_$name.log" | cut -c 1-200)"
}
(run rvq rvq; run vae vae; run spec spec) &
(run vq vq; run latent latent) &
wait
