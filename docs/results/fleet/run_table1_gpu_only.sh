#!/usr/bin/env bash
# Table I under load, the GPU alone: the same fleets (8 and 32 robots) with every robot's link its
# own (no shared cell), so what the cell adds and what the GPU adds can be told apart.
set -euo pipefail
ROBOTS=8,32 CELL= exec bash "$(dirname "$0")/run_table1_under_load.sh" \
  "${1:-docs/results/fleet/table1-gpu-only}"
