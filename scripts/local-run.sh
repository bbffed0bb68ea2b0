#!/usr/bin/env bash
# README command 1: the whole pipeline on this machine (Azurite + embedded DuckDB workspace).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
[ -f local.settings.json ] || cp local.settings.sample.json local.settings.json
exec .venv/bin/chargeback local-run "$@"
