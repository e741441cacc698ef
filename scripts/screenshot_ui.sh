#!/usr/bin/env bash
# Refresh docs/asset_graph.png and docs/graph_ml_small.png, the README's pictures of the graph: runs the browser
# test (tests/ui), which materializes the MovieLens sample by clicking in a throwaway
# `dagster dev`, and keeps its last screenshot (the whole graph after the run).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_browser.sh
# shellcheck disable=SC1091
. .venv/bin/activate
artifacts="$(mktemp -d)"
trap 'rm -rf "$artifacts"' EXIT
RECFLOW_UI_ARTIFACTS="$artifacts" python -m pytest -q -m ui tests/ui -p no:cacheprovider
mkdir -p docs
cp "$artifacts/05_graph_after.png" docs/asset_graph.png
cp "$artifacts/06_ml_small_chain.png" docs/graph_ml_small.png
echo "wrote docs/asset_graph.png and docs/graph_ml_small.png"
