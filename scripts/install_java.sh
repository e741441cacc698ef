#!/usr/bin/env bash
# Install a Java runtime (Debian's default-jre-headless, Java 17) for the Spark engine of
# the co-consumption matrix (recflow/cooc_spark.py, tests/test_cooc_spark.py). Does
# nothing when `java` is already on the PATH. Needs root (or sudo) and the Debian mirror.
set -euo pipefail
if command -v java >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
java -version
