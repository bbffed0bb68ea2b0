#!/usr/bin/env bash
# What both README commands need, installed when missing (safe to rerun): a Python 3.11 .venv with
# the app and its local/dev extras, the pinned npm tools (Azurite, the KQL analyzer, chart.js,
# Swagger UI, playwright-core) and the vendored assets the app serves (chart.js, Swagger UI).
# Nothing here needs apt or root: the browser for the dashboard test is scripts/install-chromium.sh,
# run by scripts/test.sh only.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/python.sh
source scripts/lib/python.sh

python=$(find_python)
built_with=$(venv_version .venv)
if [ -d .venv ] && { [ "$built_with" != "$NEEDED_PYTHON" ] || [ "$(python_version .venv/bin/python)" != "$NEEDED_PYTHON" ]; }; then
  echo "bootstrap: .venv was made by Python ${built_with:-unknown} (or no longer runs); rebuilding it with $python" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $python" >&2
  "$python" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml requirements.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing the app and its local/dev extras into .venv" >&2
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
  echo "bootstrap: npm ci (package-lock.json)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  touch "$lockstamp"
fi
# The dashboard's chart library and the API docs' Swagger UI, copied from the pinned npm packages
# (also azd's prepackage hook).
bash scripts/vendor-assets.sh
