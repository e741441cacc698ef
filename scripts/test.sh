#!/usr/bin/env bash
# Set up (Debian's chromium for the UI test and a Java runtime for the Spark engine's
# test included), lint, and run the whole test suite (what CI runs). The install scripts
# do nothing when chromium / java are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_browser.sh
./scripts/install_java.sh
RECFLOW_EXTRAS=dev,spark ./scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
ruff check .
ruff format --check .
RECFLOW_REQUIRE_SPARK=1 python -m pytest -q "$@"
