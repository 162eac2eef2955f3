#!/usr/bin/env bash
# The dashboard's front end (web/, docs/dashboard.md): installs its npm packages exactly as the
# lockfile pins them (npm ci, only when they changed), builds web/dist (which aloftd serves), and
# runs its browser tests against a build's aloftd in Debian's Chromium.
#
# Usage: scripts/web.sh build              npm ci when needed, then web/dist
#        scripts/web.sh test BUILD_DIR     build, then node --test (playwright-core + axe-core)
set -euo pipefail
build_dir=""
[[ -n ${2:-} ]] && build_dir=$(realpath "$2")  # before the cd: relative to where it was called
cd "$(dirname "$0")/../web"

need() {
  command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "web: node and npm are needed: run scripts/setup.sh" >&2; exit 1; }
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if ((major < 18)); then
    echo "web: Node.js $(node --version) is too old: 18 or newer (scripts/setup.sh)" >&2
    exit 1
  fi
}

install() {
  # A stamp of the lockfile the installed packages came from: npm ci again only when it changed.
  local stamp=node_modules/.aloft-lock.sha256
  local want
  want=$(sha256sum package-lock.json | cut -c1-64)
  if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "web: npm ci (packages as package-lock.json pins them)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
  fi
}

build() {
  need
  install
  node build.mjs
}

case "${1:-build}" in
  build) build ;;
  test)
    [[ -n $build_dir ]] || { echo "usage: scripts/web.sh test BUILD_DIR" >&2; exit 2; }
    build
    ALOFT_BUILD=$build_dir node --test --test-concurrency=1 test/*.test.mjs
    ;;
  *)
    echo "usage: scripts/web.sh build | test BUILD_DIR" >&2
    exit 2
    ;;
esac
