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
# The stamp names the pyproject.toml it installed and holds the extras it installed with:
# nothing to do when this pyproject was installed with at least the extras asked for now.
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ -f "$stamp" ]; then
  missing=0
  for extra in ${EXTRAS//,/ }; do grep -qx "$extra" "$stamp" || missing=1; done
  [ "$missing" = 0 ] && exit 0
  EXTRAS=$(printf '%s\n' ${EXTRAS//,/ } $(cat "$stamp") | sort -u | paste -sd, -)
fi
echo "setting up $VENV (first run, or pyproject.toml changed)..."

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if has_cuda; then
    "${pip[@]}" install "torch>=2.13"
  else
    # The local +cpu label matches only CPU builds: from a local wheel cache or PyPI mirror first,
    # else from PyTorch's CPU index (which also serves macOS and Windows builds).
    "${pip[@]}" install "torch==2.13.0+cpu" 2>/dev/null ||
      "${pip[@]}" install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
        --extra-index-url https://pypi.org/simple
  fi
fi
"${pip[@]}" install -q -e ".${EXTRAS:+[$EXTRAS]}"
rm -f "$VENV"/.installed-*
printf '%s\n' ${EXTRAS//,/ } > "$stamp"
