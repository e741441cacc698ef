#!/usr/bin/env bash
# Set up, then materialize the default asset graph on the bundled data and print its
# report (the newest ml_small/report/<version>/report.md).
# Artifacts go to $RECFLOW_HOME (default .recflow/), run history to $DAGSTER_HOME
# (default .dagster_home/), so `./scripts/dev.sh` shows these runs in the UI.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
dagster job execute -m jobs.definitions -j materialize_default "$@"
python scripts/print_report.py ml_small
