#!/usr/bin/env bash
# The trace-driven replay against the closed-loop fleet at N <= 32. The same robots (MT10,
# seeds 1000 + i) closed-loop on 1, 2 and 4 A100s (8, 16, 32 robots: the same load per GPU), and
# replays into the same clouds, in both replay modes, of three recordings: the fleet's own
# (does the queue model reproduce the closed loop from its requests?), the 32 robots recorded
# on a cloud that queues nothing, and copies of the 8-robot fleet on one GPU (recorded at the
# load per GPU the larger fleets run at). Then: python benchmarks/fleet_tables.py replay OUT
set -euo pipefail
OUT=${1:-docs/results/fleet/replay-check}
COMMON=(--tasks mt10 --agents rapid,cloud-only --links lab-wifi6 --seed 1000 --max-batch 1
        --wandb disabled --quiet)
rapid-fleet "${COMMON[@]}" --robots 32 --gpus unbounded --out "$OUT/recorded"
for pair in 8:1 16:2 32:4; do
  n=${pair%:*}; m=${pair#*:}
  rapid-fleet "${COMMON[@]}" --robots "$n" --gpus "$m" --out "$OUT/closed-$n"
done
for pair in 8:1 16:2 32:4; do
  n=${pair%:*}; m=${pair#*:}
  for source in "closed-$n" recorded closed-8; do
    for mode in reactive fixed; do
      rapid-fleet "${COMMON[@]}" --robots "$n" --gpus "$m" --replay "$OUT/$source" \
        --replay-mode "$mode" --out "$OUT/replay-$n-from-$source-$mode"
    done
  done
done
