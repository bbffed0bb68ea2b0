#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine: a venv with the app and its local/dev
# extras, the pinned npm tools (Azurite, the KQL analyzer, chart.js, playwright-core), the vendored
# chart.js the dashboard serves, and Debian's chromium for the dashboard browser test. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml requirements.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[local,dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi
if ! command -v node >/dev/null 2>&1; then
  echo "Node.js (with npm) is required for Azurite: apt-get install -y nodejs npm" >&2
  exit 1
fi
lockstamp=node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f "$lockstamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch "$lockstamp"
fi
# The dashboard's chart library, copied from the pinned npm package (also azd's prepackage hook).
bash scripts/vendor-assets.sh
# Headless Chromium for the dashboard browser test: Debian's package, driven by playwright-core
# (which downloads no browser). apt-get update only when the package lists do not know chromium.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      apt-get update -qq
    fi
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }
  else
    echo "chromium is missing (apt-get install chromium as root): the dashboard browser test will be skipped" >&2
  fi
fi
