"""Image quality: PSNR and SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5), and colour correction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB of images in 0-1 (any matching shapes)."""
    mse = torch.mean((a - b) ** 2)
    return -10 * torch.log10(mse.clamp_min(1e-12))


def gaussian_window(size: int, sigma: float, device, dtype) -> Tensor:
    """The SSIM's 1D Gaussian window `[size]`, summing to one; the 2D window is its outer product."""
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _window(size: int, sigma: float, channels: int, device, dtype) -> Tensor:
    g = gaussian_window(size, sigma, device, dtype)
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: Tensor, b: Tensor, window_size: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of images `[B, H, W, C]` in 0-1, zero-padded to the same size as in the 3DGS code."""
    a, b = a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)
    C = a.shape[1]
    w = _window(window_size, sigma, C, a.device, a.dtype)
    pad = window_size // 2
    mu_a, mu_b = F.conv2d(a, w, padding=pad, groups=C), F.conv2d(b, w, padding=pad, groups=C)
    var_a = F.conv2d(a * a, w, padding=pad, groups=C) - mu_a**2
    var_b = F.conv2d(b * b, w, padding=pad, groups=C) - mu_b**2
    cov = F.conv2d(a * b, w, padding=pad, groups=C) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean()


def colour_correct(image: Tensor, reference: Tensor) -> Tensor:
    """`image [H, W, 3]` through the affine colour map `[4, 3]` that brings it closest to `reference` in least
    squares, clamped to 0-1: Zip-NeRF's colour correction, which discounts a photo's own exposure and white balance
    from the metrics taken after it (`cc_psnr`)."""
    pixels = image.reshape(-1, 3).double()  # [P, 3]
    x = torch.cat([pixels, torch.ones_like(pixels[:, :1])], 1)  # [P, 4]
    fit = torch.linalg.lstsq(x.cpu(), reference.reshape(-1, 3).double().cpu(), driver="gelsd").solution
    return (x @ fit.to(x)).reshape(image.shape).clamp(0, 1).to(image.dtype)  # float32 lstsq is not stable
