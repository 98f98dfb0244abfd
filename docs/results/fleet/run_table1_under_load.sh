#!/usr/bin/env bash
# Table I under load: the paper regime's two deciders on their fixed partitions (RAPID 2.4 GiB,
# the escalating vision trigger 4.7 GiB), 1, 8 and 32 robots sharing one A100 and one lab-wifi6
# cell (300 Mbit/s each way), in the standard / visual-noise / interference scenes (one fleet
# per scene), the baseline under both readings of its untriggered steps (early exit, cross).
# Resumable: rerun to finish. ROBOTS and CELL (empty: no shared cell) change the sizes and the
# cell; run_table1_gpu_only.sh is this with every robot's link its own.
set -euo pipefail
OUT=${1:-docs/results/fleet/table1}
ROBOTS=${ROBOTS:-1,8,32}
CELL=${CELL-link}
COMMON=(--tasks mt10 --robots "$ROBOTS" --links lab-wifi6 ${CELL:+--cell "$CELL"} --gpus 1
        --max-batch 1 --seed 1000 --wandb disabled --quiet)
for noise in clean visual-noise interference; do
  rapid-fleet "${COMMON[@]}" --agents rapid --edge-budget-gib 2.4 --noise "$noise" \
    --out "$OUT/rapid-$noise"
  rapid-fleet "${COMMON[@]}" --agents 'vision-entropy(mode=escalate)' --edge-budget-gib 4.7 \
    --noise "$noise" --out "$OUT/vision-$noise"
  # the symmetric reading: the baseline's untriggered refills cross its partition too
  rapid-fleet "${COMMON[@]}" --agents 'vision-entropy(mode=escalate,untriggered=cross)' \
    --edge-budget-gib 4.7 --noise "$noise" --out "$OUT/vision-cross-$noise"
done
