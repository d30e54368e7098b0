#!/usr/bin/env bash
# Spark needs a Java 17 runtime: take Debian's package when none is on the machine (no other download).
set -euo pipefail
if command -v java >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ]; then
  exit 0
fi
echo "no Java found: installing Debian's openjdk-17-jre-headless" >&2
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless
