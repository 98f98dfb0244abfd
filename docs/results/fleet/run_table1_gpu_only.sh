#!/usr/bin/env bash
# Table I under load, the GPU alone: the same fleets with every robot's link its own (no shared
# cell), so what the cell adds and what the GPU adds can be told apart.
set -euo pipefail
OUT=${1:-docs/results/fleet/table1-gpu-only}
COMMON=(--tasks mt10 --robots 8,32 --links lab-wifi6 --gpus 1 --max-batch 1 --seed 1000
        --wandb disabled --quiet)
for noise in clean visual-noise interference; do
  rapid-fleet "${COMMON[@]}" --agents rapid --edge-budget-gib 2.4 --noise "$noise" \
    --out "$OUT/rapid-$noise"
  rapid-fleet "${COMMON[@]}" --agents 'vision-entropy(mode=escalate)' --edge-budget-gib 4.7 \
    --noise "$noise" --out "$OUT/vision-$noise"
  rapid-fleet "${COMMON[@]}" --agents 'vision-entropy(mode=escalate,untriggered=cross)' \
    --edge-budget-gib 4.7 --noise "$noise" --out "$OUT/vision-cross-$noise"
done
