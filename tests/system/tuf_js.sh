#!/usr/bin/env bash
# tuf-js (npm, an independent TUF client) against this build's aloftd Image repository
# (tests/tuf-js, docs/trust.md). Installs the packages exactly as the lockfile pins them (npm ci,
# only when the lockfile changed).
#
# Usage: tests/system/tuf_js.sh BUILD_DIR
set -euo pipefail
build_dir=$(realpath "${1:?usage: tests/system/tuf_js.sh BUILD_DIR}")
cd "$(dirname "$0")/../tuf-js"
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "tuf-js: node and npm are needed: run scripts/setup.sh" >&2; exit 1; }
stamp=node_modules/.aloft-lock.sha256
want=$(sha256sum package-lock.json | cut -c1-64)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "tuf-js: npm ci (packages as package-lock.json pins them)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
ALOFT_BUILD=$build_dir node --test --test-concurrency=1 interop.test.mjs
