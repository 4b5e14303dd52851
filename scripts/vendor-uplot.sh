#!/usr/bin/env bash
# Refresh the dashboard's chart library (uPlot, MIT) in src/mizzen/ui/static/vendor/ from npm:
#   bash scripts/vendor-uplot.sh 1.6.32
# The files are committed, so builds and installs never need npm; commit what this changes.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:?usage: scripts/vendor-uplot.sh VERSION (e.g. 1.6.32)}"
vendor=src/mizzen/ui/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$version" >/dev/null && tar -xzf uplot-*.tgz)
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$vendor/"
cp "$work/package/LICENSE" "$vendor/uPlot.LICENSE"
sed -i "s/^uPlot [0-9.]*\$/uPlot $version/" "$vendor/README.md"
echo "uPlot $version in $vendor:"
sha256sum "$vendor"/uPlot.*
