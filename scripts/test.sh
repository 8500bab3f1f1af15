#!/usr/bin/env bash
# Set up .venv with the dev extras, then run the test suite. Extra arguments go to pytest,
# e.g. scripts/test.sh -m "not slow" or scripts/test.sh tests/test_cameras.py
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
# The peers' Node tools for the interop tests (skipped without Node; CI sets SPATIAL_INTEROP_REQUIRED=1,
# which makes a missing Node or npm an error)
SPATIAL_NODE_TOOLS=$(scripts/node_tools.sh ${SPATIAL_INTEROP_REQUIRED:+--required})
export SPATIAL_NODE_TOOLS
# nerfstudio's own environment for its interop tests: built in CI, or where SPATIAL_NERFSTUDIO=1 (about 8 GB, once);
# elsewhere used when already built, and those tests skip and say how to build it
SPATIAL_NERFSTUDIO_PYTHON=$(scripts/nerfstudio_env.sh ${SPATIAL_INTEROP_REQUIRED:+--build} ${SPATIAL_NERFSTUDIO:+--build})
export SPATIAL_NERFSTUDIO_PYTHON
exec .venv/bin/python -m pytest "$@"
