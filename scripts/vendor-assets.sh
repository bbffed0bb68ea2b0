#!/usr/bin/env bash
# Vendors the front-end assets the app serves itself (no CDN, works offline): chart.js for the
# dashboard and Swagger UI for /api/docs, copied from the pinned npm packages (package.json /
# package-lock.json) into shared/api/static/vendor/.  Run by scripts/bootstrap.sh and by azd's
# prepackage hook (azure.yaml), so the deployed package always holds them. The copies are gitignored
# (not funcignored); without them the asset routes answer 503 saying to run this.
set -euo pipefail
cd "$(dirname "$0")/.."
# "source in node_modules  destination"
assets=(
  "node_modules/chart.js/dist/chart.umd.min.js shared/api/static/vendor/chart.umd.min.js"
  "node_modules/swagger-ui-dist/swagger-ui-bundle.js shared/api/static/vendor/swagger-ui/swagger-ui-bundle.js"
  "node_modules/swagger-ui-dist/swagger-ui.css shared/api/static/vendor/swagger-ui/swagger-ui.css"
  "node_modules/swagger-ui-dist/favicon-32x32.png shared/api/static/vendor/swagger-ui/favicon-32x32.png"
)
for entry in "${assets[@]}"; do
  if [ ! -f "${entry%% *}" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    break
  fi
done
for entry in "${assets[@]}"; do
  src=${entry%% *}
  dest=${entry#* }
  mkdir -p "$(dirname "$dest")"
  if ! cmp -s "$src" "$dest"; then
    cp "$src" "$dest"
  fi
done
