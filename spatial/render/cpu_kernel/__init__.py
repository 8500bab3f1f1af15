"""The compositing step in C with OpenMP, compiled on first use with the machine's C compiler (see
spatial/c_kernels.py). When no compiler is found, `load()` returns None and the renderer falls back to the
pure-PyTorch path.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from spatial.c_kernels import compiled

SOURCE = Path(__file__).with_name("composite.c")
_lib: ctypes.CDLL | None = None
_tried = False


def load() -> ctypes.CDLL | None:
    """The compiled kernel, building it on first use; None when it cannot be built here."""
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    lib = compiled(SOURCE, "the slower pure-PyTorch rasterizer")
    if lib is None:
        return None
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    lib.composite_forward.argtypes = [i64, i32, i32, i32, i32, i32] + [ptr] * 10 + [i32]
    lib.composite_backward.argtypes = [i64, i32, i32, i32, i32, i32] + [ptr] * 15 + [i32]
    _lib = lib
    return lib
