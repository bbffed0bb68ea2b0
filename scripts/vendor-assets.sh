#!/usr/bin/env bash
# Vendors the dashboard's chart library: copies the pinned chart.js build (package.json /
# package-lock.json) into shared/api/static/vendor/, from where the app serves it itself (no CDN).
# Run by scripts/bootstrap.sh and by azd's prepackage hook (azure.yaml), so the deployed package
# always holds it. The copy is gitignored; without it the asset route answers 503.
set -euo pipefail
cd "$(dirname "$0")/.."
src=node_modules/chart.js/dist/chart.umd.min.js
dest=shared/api/static/vendor/chart.umd.min.js
if [ ! -f "$src" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p "$(dirname "$dest")"
if ! cmp -s "$src" "$dest"; then
  cp "$src" "$dest"
fi
