#!/usr/bin/env bash
# Install the peers' Node tools that the interop tests run (PlayCanvas's splat-transform, the Khronos
# glTF validator), pinned by tests/interop/package-lock.json, into a cache shared between clones:
#   ${SPATIAL_NODE_TOOLS_CACHE:-~/.cache/spatial/node-tools}/<lock hash>/node_modules/.bin/
# Prints that folder. Safe to run again: npm runs only when the lock file changed.
# Usage: scripts/node_tools.sh [--required]   (--required: no Node or npm is an error, as in CI)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "scripts/node_tools.sh: Node.js and npm are needed for the interop tests (apt-get install nodejs npm)" >&2
  [ "${1:-}" = --required ] && exit 1
  exit 0
fi
lock=tests/interop/package-lock.json
dir="${SPATIAL_NODE_TOOLS_CACHE:-$HOME/.cache/spatial/node-tools}/$(sha1sum "$lock" | cut -c1-12)"
if [ ! -x "$dir/node_modules/.bin/splat-transform" ]; then
  echo "installing the interop tools into $dir (first run, or $lock changed)..." >&2
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  cp tests/interop/package.json "$lock" "$dir.partial/"
  # --ignore-scripts: no install script runs (splat-transform's optional WebGPU build is not needed
  # with `--gpu cpu`, which the tests pass)
  (cd "$dir.partial" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$dir" && mv "$dir.partial" "$dir"
fi
echo "$dir"
