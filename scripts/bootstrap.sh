#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine: a venv with the app and its local/dev
# extras, and the pinned npm tools (Azurite, the KQL analyzer, chart.js). Safe to rerun.
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
