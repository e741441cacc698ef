#!/usr/bin/env bash
# Open the Dagster UI on http://127.0.0.1:3000 (host and port overridable).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. .venv/bin/activate
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
exec dagster dev -h "${RECFLOW_UI_HOST:-127.0.0.1}" -p "${RECFLOW_UI_PORT:-3000}" -w workspace.yaml
