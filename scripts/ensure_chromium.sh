#!/usr/bin/env bash
# The browser tests drive Debian's Chromium with Playwright (never a downloaded browser): take Debian's
# package when it is not on the machine. Without apt or root rights it says so and the browser tests skip.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "no /usr/bin/chromium and no root: the browser tests will be skipped (apt-get install chromium)" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no /usr/bin/chromium and no apt-get: the browser tests will be skipped" >&2
  exit 0
fi
echo "no Chromium found: installing Debian's chromium for the browser tests" >&2
$SUDO apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
  || echo "chromium could not be installed: the browser tests will be skipped" >&2
exit 0
