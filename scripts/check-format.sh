#!/usr/bin/env bash
# Fails, listing the files, when any C++ source differs from clang-format's output (.clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "check-format: not clang-formatted (run: clang-format -i FILE): ${bad[*]}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
