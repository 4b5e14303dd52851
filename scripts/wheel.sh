#!/usr/bin/env bash
# `make wheel`: mizzen's wheel and sdist in dist/ (or the folder given), from this checkout
# alone (the dashboard's chart library is committed: no npm). The wheel is built from the
# sdist, so both are complete.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/mizzen/_version.py)"
if command -v uv >/dev/null 2>&1; then
  uv build -q --out-dir "$out"
elif python3 -m build --version >/dev/null 2>&1; then
  python3 -m build -o "$out" .
else
  echo "make wheel needs uv (pip install uv) or build (pip install build)" >&2
  exit 2
fi
wheel="$(cd "$out" && pwd)/mizzen-$version-py3-none-any.whl"
echo "built $wheel"
echo "  and ${wheel%-py3-none-any.whl}.tar.gz"
echo "install it as a command: pipx install '$wheel[all]'   (or: uv tool install '$wheel[all]')"
echo "       or in a virtualenv: pip install '$wheel[all]'"
