#!/usr/bin/env bash
# Set up .venv, then run the main job on the built-in default scene. Arguments go to `spatial demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/spatial demo "$@"
