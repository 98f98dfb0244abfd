#!/usr/bin/env bash
# The trace-driven replay against the closed-loop fleet at N <= 32: record every robot's
# requests on a cloud that queues nothing, run the same robots closed-loop on 1, 2 and 4 GPUs
# (8, 16, 32 robots: the same load per GPU), and replay the recording into the same clouds.
set -euo pipefail
OUT=${1:-docs/results/fleet/replay-check}
COMMON=(--tasks mt10 --agents rapid,cloud-only --links lab-wifi6 --seed 1000 --max-batch 1
        --wandb disabled --quiet)
rapid-fleet "${COMMON[@]}" --robots 32 --gpus unbounded --out "$OUT/recorded"
for pair in 8:1 16:2 32:4; do
  n=${pair%:*}; m=${pair#*:}
  rapid-fleet "${COMMON[@]}" --robots "$n" --gpus "$m" --out "$OUT/closed-$n"
  rapid-fleet "${COMMON[@]}" --robots "$n" --gpus "$m" --replay "$OUT/recorded" \
    --out "$OUT/replay-$n"
done
