"""Which torch device a run or a model goes on, and how much memory it has used there.

`auto` is the one default every command takes: a CUDA GPU when torch sees one, else the CPU.
"""

from __future__ import annotations

import resource

import torch

from spatial.errors import SpatialError


def pick_device(name: str | torch.device) -> torch.device:
    """`auto` is cuda when a GPU is available, else cpu; a named device must exist here."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise SpatialError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpatialError(f"device {name!r}: torch sees no CUDA GPU on this machine; use --device cpu "
                           "(or auto, which picks the GPU when there is one)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SpatialError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return device


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":  # reached on a GPU only (scripts/gpu_check.py): no CPU stand-in for CUDA's allocator
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB
