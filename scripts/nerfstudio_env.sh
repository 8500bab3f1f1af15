#!/usr/bin/env bash
# nerfstudio 1.1.5 in a virtual environment of its own, for the interop tests (tests/test_interop_nerfstudio.py).
# It pins numpy<2, viser 0.2.7 and gsplat 1.4, so it cannot share ours. Pinned by
# tests/interop/nerfstudio-requirements.txt and kept in a cache shared between clones:
#   ${SPATIAL_NERFSTUDIO_CACHE:-~/.cache/spatial/nerfstudio}/<lock hash>/bin/python
# Prints that python when the environment is there; with --build, builds it first when it is not (about
# 8 GB, since nerfstudio brings PyTorch's CUDA build, and 3-4 minutes), and a failure is an error.
# scripts/test.sh passes --build in CI (SPATIAL_INTEROP_REQUIRED=1) or when SPATIAL_NERFSTUDIO=1.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=tests/interop/nerfstudio-requirements.txt
dir="${SPATIAL_NERFSTUDIO_CACHE:-$HOME/.cache/spatial/nerfstudio}/$(sha1sum "$lock" | cut -c1-12)"
if [ ! -f "$dir/.complete" ]; then
  [ "${1:-}" = --build ] || exit 0
  # open3d, which nerfstudio reads point clouds with, links against libusb-1.0 (Debian: libusb-1.0-0). grep reads
  # all of ldconfig's list: with -q it would stop at the first match, and pipefail would count the SIGPIPE as absent
  if ! "$(command -v ldconfig || echo /sbin/ldconfig)" -p | grep 'libusb-1\.0\.so' >/dev/null; then
    echo "scripts/nerfstudio_env.sh: nerfstudio's open3d needs libusb-1.0 (apt-get install libusb-1.0-0)" >&2
    exit 1
  fi
  echo "building nerfstudio's environment in $dir (first run, or $lock changed)..." >&2
  rm -rf "$dir"
  "${PYTHON:-python3}" -m venv "$dir"
  if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$lock" >"$dir.log" 2>&1; then
    cat "$dir.log" >&2
    exit 1
  fi
  "$dir/bin/python" -c "import nerfstudio.data.dataparsers.colmap_dataparser" >&2
  touch "$dir/.complete"
fi
echo "$dir/bin/python"
