#!/usr/bin/env bash
# Draws the folder-level import graph of src/ into docs/module-graph.svg, which README's
# Architecture section shows: dependency-cruiser's dot output (folders collapsed, the rules of
# .dependency-cruiser.cjs applied) laid out by graphviz. Run it after changing which folders import
# which, and commit the picture. Needs graphviz (`apt-get install graphviz`); the test command does not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v dot >/dev/null || { echo "module-graph.sh: needs graphviz's dot: apt-get install graphviz" >&2; exit 1; }
out=docs/module-graph.svg
node_modules/.bin/depcruise src --config .dependency-cruiser.cjs --include-only '^src/' \
  --collapse '^src/[^/]+' --output-type dot | dot -Tsvg > "$out.tmp"
mv "$out.tmp" "$out"
echo "module-graph.sh: wrote $out" >&2
