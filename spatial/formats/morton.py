"""Morton (Z-order) sorting of splat centres, which the chunked web formats (SOG, compressed PLY) use so that
neighbouring splats share a chunk's bounds or compress together."""

from __future__ import annotations

import numpy as np


def _spread(v: np.ndarray) -> np.ndarray:
    """The 10 low bits of `v` moved to every third bit."""
    v = v.astype(np.uint64) & np.uint64(0x3FF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x030000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x0300F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x030C30C3)
    v = (v | (v << np.uint64(2))) & np.uint64(0x09249249)
    return v


def morton_order(means: np.ndarray) -> np.ndarray:
    """Indices `[N]` that sort `[N, 3]` centres along a 30-bit Morton curve over their bounding box."""
    lo, hi = means.min(0), means.max(0)
    cells = np.floor((means - lo) / np.where(hi > lo, hi - lo, 1.0) * 1023.0 + 0.5)
    x, y, z = np.clip(cells, 0, 1023).T
    return np.argsort(_spread(x) | (_spread(y) << np.uint64(1)) | (_spread(z) << np.uint64(2)), kind="stable")
