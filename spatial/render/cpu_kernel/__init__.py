"""The CPU backend's C kernels with OpenMP, compiled on first use with the machine's C compiler (see
spatial/c_kernels.py; `SPATIAL_KERNEL_ISA` picks the build): the compositing step (`load()`) and the SSIM of the
training loss (`load_ssim()`). When no compiler is found, each returns None and its caller falls back to PyTorch.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from spatial.c_kernels import compiled

SOURCE = Path(__file__).with_name("composite.c")
SSIM_SOURCE = Path(__file__).with_name("ssim.c")


def load() -> ctypes.CDLL | None:
    """The compiled kernel, building it on first use (`compiled` keeps it); None when it cannot be built here."""
    lib = compiled(SOURCE, "the slower pure-PyTorch rasterizer")
    if lib is not None and lib.composite_forward.argtypes is None:
        i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
        lib.composite_forward.argtypes = [i64, i32, i32, i32, i32, i32] + [ptr] * 10 + [i32]
        lib.composite_backward.argtypes = [i64, i32, i32, i32, i32, i32] + [ptr] * 15 + [i32]
        lib.composite_lanes.argtypes, lib.composite_lanes.restype = [], ctypes.c_int
        lib.sum_by_gaussian.argtypes = [i64, i64, ptr, i32, ptr, ptr, ptr, i32]
    return lib


def load_ssim() -> ctypes.CDLL | None:
    """The compiled SSIM kernel (see ssim.c); None when it cannot be built here."""
    lib = compiled(SSIM_SOURCE, "PyTorch's convolutions for the SSIM")
    if lib is not None and lib.ssim_forward.argtypes is None:
        i32, ptr = ctypes.c_int, ctypes.c_void_p
        lib.ssim_forward.argtypes = [i32, i32, i32, ptr, ptr, ptr, i32, ptr, ptr, i32]
        lib.ssim_backward.argtypes = [i32, i32, i32, ptr, ptr, ptr, i32, ptr, ctypes.c_float, ptr, i32]
    return lib
