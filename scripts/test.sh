#!/usr/bin/env bash
# Set up (Debian's chromium for the UI test included), lint, and run the whole test
# suite (what CI runs). install_browser.sh does nothing when chromium is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_browser.sh
./scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
ruff check .
ruff format --check .
python -m pytest -q "$@"
