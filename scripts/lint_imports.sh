#!/usr/bin/env bash
# Check the import-linter contracts of pyproject.toml (the layers of docs/architecture.md).
#
# The installed package maps three top-level folders into it (tasks/ -> rapid_env.tasks, agents/ ->
# rapid_env.agents, eval/ -> rapid_env.eval); import-linter reads modules from the package's own
# folder, so we lay the sources out as installed (Python files only) and lint that tree. `make
# test` then runs mypy on the same tree, where `rapid_env.agents...` imports resolve to real types.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tree="$root/build/lint-imports"
rm -rf "$tree" && mkdir -p "$tree"
cd "$root"
tar --exclude=__pycache__ --exclude=data -cf - rapid_env | tar -xf - -C "$tree"
for folder in tasks agents eval; do
    tar --exclude=__pycache__ -cf - "$folder" | tar -xf - -C "$tree/rapid_env"
done
cd "$tree"
"${LINT_IMPORTS:-$root/.venv/bin/lint-imports}" --no-cache "$root/pyproject.toml"
