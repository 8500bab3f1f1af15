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
    check_tensors(path, payload)
    return payload


MAX_DEPTH = 16  # a checkpoint nests 5 levels (optimizer state: dict, "state", index, name, tensor)


def check_tensors(path: Path, payload: dict) -> None:
    """Every tensor in `payload` is a plain one that owns its elements: an expanded view (stride 0) of a few stored
    bytes can claim billions of elements, which the first copy of it would allocate. Checked before any is used."""
    stack = [(payload, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise file_error(path, f"{where}: nested more than {MAX_DEPTH} levels deep, which no checkpoint is")
        if isinstance(node, torch.Tensor):
            if node.layout != torch.strided:
                raise file_error(path, f"{where}: a {node.layout} tensor; checkpoints hold plain (dense) tensors")
            stored = node.untyped_storage().nbytes()
            if node.numel() * node.element_size() > stored:
                raise file_error(path, f"{where}: a tensor of shape {tuple(node.shape)} made from {stored:,} stored "
                                       "bytes (an expanded view); checkpoints hold plain tensors")
        elif isinstance(node, dict):
            stack += [(v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in node.items()]
        elif isinstance(node, (list, tuple)):
            stack += [(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node)]

