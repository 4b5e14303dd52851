#!/usr/bin/env bash
# Set up a fresh machine for `make demo` or `make test`: system packages, servers, Python deps.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"   # demo | test

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages: ${missing[*]} (run as root or install them)"; return 0
  fi
  log "apt-get install ${missing[*]}"
  if [ ! -f /tmp/.mizzen-apt-updated ]; then apt-get update -qq && touch /tmp/.mizzen-apt-updated; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "$what" = "test" ]; then
  # image builds without a daemon, a registry, a browser for the UI tests
  apt_install buildah podman skopeo runc docker-registry busybox-static chromium
fi

PY="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1; then
  log "installing uv"
  "$PY" -m pip install -q uv
fi
UV="$(command -v uv || echo "$PY -m uv")"

extras=(--extra s3 --extra azure --extra gcs --extra models --extra serve --extra kubernetes --extra notebook --extra ui --extra demo --extra datasets)
groups=()
# The test run also covers Spark jobs (pyspark, locked like everything else: ~55 s to build once).
[ "$what" = "test" ] && groups=(--group dev --extra spark)
log "python dependencies (uv sync --frozen)"
$UV sync --frozen --inexact --compile-bytecode -q "${extras[@]}" "${groups[@]}"

if [ "$what" = "test" ]; then
  # Spark tests (marker spark): a Java 17 runtime.
  apt_install openjdk-17-jre-headless
  # The gloo all-reduce test (marker torch): the CPU wheel only, never the CUDA build.
  if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    if ls /opt/wheels/torch-2.13.0+cpu-* >/dev/null 2>&1; then
      log "torch (CPU wheel from /opt/wheels)"
      $UV pip install --python .venv/bin/python -q --find-links /opt/wheels 'torch==2.13.0+cpu'
    else
      log "no CPU torch wheel in /opt/wheels: the torch tests will not run (pip install 'torch==2.13.0' with a CPU index)"
    fi
  fi
  # Azurite (Azure blob emulator) from npm. 3.37 is the first to honour List Blobs
  # `startFrom`, which delta-rs (datasets) lists its log with; it runs on node 20 although
  # its package asks for 22 (npm only warns).
  azurite_version=3.37.0
  if command -v npm >/dev/null 2>&1 && ! grep -qs "\"version\": \"$azurite_version\"" .tools/node_modules/azurite/package.json; then
    log "npm install azurite@$azurite_version"
    npm install --silent --no-audit --no-fund --prefix .tools "azurite@$azurite_version" >/dev/null 2>&1
  fi
fi
if [ "$what" = "test" ] && [ ! -x .tools/promtool ] && command -v apt-get >/dev/null 2>&1; then
  # promtool checks and unit-tests the PrometheusRule of signal alerts (tests/signals): taken
  # from Debian's prometheus package without installing it (no service, no daemon)
  log "promtool (from Debian's prometheus package, extracted into .tools/)"
  tmp="$(mktemp -d)"
  if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb x); then
    mkdir -p .tools && install -m 755 "$tmp/x/usr/bin/promtool" .tools/promtool
  else
    log "could not download Debian's prometheus package: the promtool tests will not run"
  fi
  rm -rf "$tmp"
fi
log "ready ($what)"
