#!/usr/bin/env bash
# A city's fleet: GPUs needed for 1,000 and 10,000 robots per decider at a chunk-latency p95
# SLO, from two recordings of the replay check (the 32 robots on a cloud that queued nothing,
# and the 32 robots closed-loop on 4 GPUs), replayed in the fixed mode.
set -euo pipefail
CHECK=${1:-docs/results/fleet/replay-check}
OUT=${2:-docs/results/fleet/city}
COMMON=(--tasks mt10 --agents rapid,cloud-only --links lab-wifi6 --seed 1000 --wandb disabled
        --quiet --robots 1000,10000 --gpus-needed)
for source in recorded closed-32; do
  rapid-fleet "${COMMON[@]}" --replay "$CHECK/$source" --slo-p95-ms 200 --max-batch 1 \
    --out "$OUT/$source-b1-slo200"
  rapid-fleet "${COMMON[@]}" --replay "$CHECK/$source" --slo-p95-ms 300 --max-batch 4 \
    --max-wait-ms 10 --out "$OUT/$source-b4-slo300"
done
