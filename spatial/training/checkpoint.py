"""Checkpoint files: written atomically, read without running anything they carry.

A checkpoint holds only tensors, numbers, strings, lists and dicts (configs as `dataclasses.asdict`,
random states as tensors), so it is read with `torch.load(weights_only=True)`: a `.pt` from a stranger
that pickles code (`__reduce__` calling anything at all) is refused before any of it runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from spatial.errors import file_error
from spatial.files import atomic_path


def write_checkpoint(payload: dict, path: Path) -> None:
    """Save `payload` to `path` atomically (spatial.files.atomic_path): a crash or Ctrl-C mid-write never
    leaves a truncated checkpoint, and an unwritable disk is a one-line error."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: Path) -> dict:
    """The payload of a checkpoint file, on the CPU; a one-line `SpatialError` naming the file otherwise."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a truncated or foreign file
        if isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in str(e):
            raise file_error(path, "not a checkpoint written by `spatial train`: it holds Python objects other "
                                   "than tensors and plain data, which are never loaded (they could run code)"
                             ) from None
        detail = (str(e).splitlines() or [""])[0][:200]
        raise file_error(path, f"not a readable checkpoint (not a PyTorch file, or a damaged one: "
                               f"{type(e).__name__}: {detail})") from None
    if not isinstance(payload, dict):
        raise file_error(path, "not a checkpoint written by `spatial train` (no model inside)")
    return payload

