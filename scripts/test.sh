#!/usr/bin/env bash
# README command 2: lint, type-check and the full test suite (tests start their own Azurite).
# Without arguments the unit tier (tests/unit: pure logic, seconds) runs first and a failure there
# stops before anything starts Azurite; then every other test (tests/integration and any test file
# outside tests/unit).  With arguments, pytest runs exactly those.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-chromium.sh  # the dashboard browser test's only need; the local run has none
.venv/bin/ruff check .
.venv/bin/mypy

run_pytest() {
  set +e
  .venv/bin/python -m pytest "$@"
  local status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests ($*): failing on purpose" >&2
    return 1
  fi
  return "$status"
}

if [ "$#" -gt 0 ]; then
  run_pytest "$@"
else
  run_pytest tests/unit
  run_pytest tests --ignore=tests/unit
fi
