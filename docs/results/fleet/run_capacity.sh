#!/usr/bin/env bash
# Robots per A100 within a chunk-latency p95 SLO of 250 ms, closed loop, per decider, on
# lab-wifi6 links of their own (no shared cell), batches of one.
set -euo pipefail
OUT=${1:-docs/results/fleet/capacity}
rapid-fleet --capacity --slo-p95-ms 250 --agents rapid,cloud-only --tasks mt10 \
  --links lab-wifi6 --gpus 1 --max-batch 1 --max-robots 32 --seed 1000 --wandb offline \
  --quiet --out "$OUT"
# the same with the robots' starts spread over a whole episode (a fleet in steady state)
rapid-fleet --capacity --slo-p95-ms 250 --agents rapid,cloud-only --tasks mt10 \
  --links lab-wifi6 --gpus 1 --max-batch 1 --max-robots 32 --seed 1000 --stagger-s 10 \
  --wandb offline --quiet --out "$OUT-steady"
