#!/usr/bin/env bash
# Create .venv and install spatial into it. Safe to run again: pip runs only when pyproject.toml
# or the requested extras changed. Usage: scripts/setup.sh [EXTRAS], e.g. scripts/setup.sh dev
#
# torch: on a machine with an NVIDIA GPU the regular (CUDA) build and the gsplat extra are
# installed; everywhere else the CPU build (torch 2.13.0+cpu), which is a fraction of the size.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${SPATIAL_VENV:-.venv}
EXTRAS=${1:-}

has_cuda() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }
if has_cuda; then EXTRAS=${EXTRAS:+$EXTRAS,}cuda; fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
stamp="$VENV/.installed-$( (cat pyproject.toml; echo "$EXTRAS") | sha1sum | cut -c1-12)"
[ -f "$stamp" ] && exit 0

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if has_cuda; then
    "${pip[@]}" install "torch>=2.4"
  else
    # The local +cpu label matches only CPU builds: from a local wheel cache or PyPI mirror first,
    # else from PyTorch's CPU index (which also serves macOS and Windows builds).
    "${pip[@]}" install "torch==2.13.0+cpu" 2>/dev/null ||
      "${pip[@]}" install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
        --extra-index-url https://pypi.org/simple
  fi
fi
"${pip[@]}" install -e ".${EXTRAS:+[$EXTRAS]}"
rm -f "$VENV"/.installed-*
touch "$stamp"
