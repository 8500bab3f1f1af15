"""Quantisation shared by the compact formats: the logit of an 8-bit alpha, and the codebooks of the palette
formats (SOG): a 256-entry scalar codebook per attribute and a k-means palette of SH vectors. Vectorised
numpy/torch; no Python loop over splats."""

from __future__ import annotations

import numpy as np
import torch

ALPHA_LIMIT = 1e-6
"""How far short of 0 and 1 a decoded alpha stops (they have no finite logit): as PlayCanvas's splat-transform
decodes an SPZ or SOG alpha of 0 or 255, so a splat reads back alike through either tool."""


def alpha_logit(alpha: np.ndarray) -> np.ndarray:
    """Logit opacities of alphas in 0-1 (decoded 8-bit ones, or a PLY's sigmoid +-inf), kept finite."""
    alpha = np.clip(alpha, ALPHA_LIMIT, 1 - ALPHA_LIMIT)
    return np.log(alpha / (1 - alpha))


def codebook_1d(values: np.ndarray, size: int = 256, iterations: int = 10,
                sample: int = 1 << 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A sorted codebook `[size]` for scalar `values` (any shape) by Lloyd's k-means, and each value's index into
    it (same shape, uint8 for size 256). Fitted on at most `sample` values. Half the starting entries are the
    quantiles and half evenly spaced from the smallest value to the largest, so that the tails (the brightest
    colours, the largest splats) keep entries of their own."""
    flat = values.reshape(-1).astype(np.float64)
    fit = flat if flat.size <= sample else np.random.default_rng(seed).choice(flat, sample, replace=False)
    fit = np.sort(fit)
    half = size // 2
    centres = np.sort(np.concatenate([np.quantile(fit, (np.arange(size - half) + 0.5) / (size - half)),
                                      np.linspace(fit[0], fit[-1], half)]))
    for _ in range(iterations):
        edges = (centres[1:] + centres[:-1]) / 2
        label = np.searchsorted(edges, fit)
        sums = np.bincount(label, fit, minlength=size)
        counts = np.bincount(label, minlength=size)
        centres = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
        centres = np.sort(centres)
    edges = (centres[1:] + centres[:-1]) / 2
    labels = np.searchsorted(edges, flat).reshape(values.shape)
    return centres.astype(np.float32), labels.astype(np.uint8 if size <= 256 else np.uint16)


def kmeans(vectors: np.ndarray, k: int, iterations: int = 10, sample: int = 65536,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Centroids `[k, D]` for `[N, D]` vectors (Lloyd's k-means on a sample of at most `sample` of them, started
    at random members) and every vector's label `[N]` (int64)."""
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    g = torch.Generator().manual_seed(seed)
    N = x.shape[0]
    k = min(k, N)
    fit = x[torch.randperm(N, generator=g, device="cpu")[:sample]] if N > sample else x
    centres = fit[torch.randperm(fit.shape[0], generator=g, device="cpu")[:k]].clone()
    for _ in range(iterations):
        label = nearest(fit, centres)
        sums = torch.zeros_like(centres).index_add_(0, label, fit)
        counts = torch.bincount(label, minlength=k).to(fit.dtype)[:, None]
        centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
    return centres.numpy(), nearest(x, centres).numpy()


def nearest(x: torch.Tensor, centres: torch.Tensor, rows: int = 16384) -> torch.Tensor:
    """The index of the nearest centre `[k, D]` to each row of `x` `[N, D]` (in blocks of `rows`)."""
    c2 = (centres**2).sum(-1)
    return torch.cat([(c2 - 2 * block @ centres.T).argmin(-1) for block in x.split(rows)]) if len(x) else \
        torch.zeros(0, dtype=torch.long, device=x.device)
