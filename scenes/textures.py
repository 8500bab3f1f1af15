"""Textures from scikit-image's bundled sample images (shipped in the wheel; nothing downloaded)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def texture(name: str) -> Tensor:
    """Sample image `name` (e.g. 'astronaut', 'gravel') as `[3, H, W]` float32 in 0-1."""
    import skimage.data

    pixels = np.asarray(getattr(skimage.data, name)())
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    return torch.from_numpy(pixels[..., :3].astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
