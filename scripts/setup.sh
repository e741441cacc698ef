#!/usr/bin/env bash
# Create .venv (once) and install recflow with its dev tools. Safe to run again.
# RECFLOW_EXTRAS picks the optional extras (default "dev"; the tests use "dev,spark").
# torch is installed first and pinned: 2.13.0 is the CPU build these machines hold
# locally; leaving torch to the package's range would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
pip install --quiet --disable-pip-version-check "${RECFLOW_TORCH_SPEC:-torch==2.13.0}"
pip install --quiet --disable-pip-version-check -e ".[${RECFLOW_EXTRAS:-dev}]"
