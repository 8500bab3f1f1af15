"""The CPU backend: the torch backend's projection and binning, compositing in the C kernel.

Forward and backward are hand-written in `cpu_kernel/composite.c`; the backward walks each pixel's
Gaussians back to front (as gsplat's CUDA kernel does) instead of keeping autograd's
per-intersection intermediates, so it is both faster and leaner than the pure-PyTorch path,
which stays as the reference it is tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatial.render import cpu_kernel
from spatial.render.options import RenderOptions, RenderOutput
from spatial.render.tiles import TileBins
from spatial.render.torch_backend import rasterize_torch


def kernel_available() -> bool:
    return cpu_kernel.load() is not None


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, features, bins: TileBins, width: int, height: int, tile_size: int,
                absgrad: Tensor | None):
        lib = cpu_kernel.load()
        means2d, conics = means2d.contiguous().float(), conics.contiguous().float()
        opacities, features = opacities.contiguous().float(), features.contiguous().float()
        F = features.shape[-1]
        # the C kernel writes host memory: every buffer it fills is on the CPU, named so
        out = torch.empty(height, width, F, device="cpu")
        alpha = torch.empty(height, width, 1, device="cpu")
        t_final = torch.empty(height, width, device="cpu")
        n_contrib = torch.empty(height, width, dtype=torch.int32, device="cpu")
        lib.composite_forward(
            bins.tiles_x * bins.tiles_y, bins.tiles_x, tile_size, width, height, F,
            _ptr(bins.offsets), _ptr(bins.gaussian_ids), _ptr(means2d), _ptr(conics), _ptr(opacities),
            _ptr(features), _ptr(out), _ptr(alpha), _ptr(t_final), _ptr(n_contrib), torch.get_num_threads())
        ctx.save_for_backward(means2d, conics, opacities, features, t_final, n_contrib)
        ctx.bins, ctx.size, ctx.absgrad = bins, (width, height, tile_size), absgrad
        return out, alpha

    @staticmethod
    def backward(ctx, v_out, v_alpha):
        lib = cpu_kernel.load()
        means2d, conics, opacities, features, t_final, n_contrib = ctx.saved_tensors
        bins, (width, height, tile_size) = ctx.bins, ctx.size
        M, F = bins.gaussian_ids.shape[0], features.shape[-1]
        v_means2d, v_conics = torch.zeros(M, 2, device="cpu"), torch.zeros(M, 3, device="cpu")
        v_opac, v_feat = torch.zeros(M, device="cpu"), torch.zeros(M, F, device="cpu")
        v_abs = None if ctx.absgrad is None else torch.zeros(M, 2, device="cpu")
        v_out = v_out.contiguous().float()
        v_alpha = v_alpha.contiguous().float()
        lib.composite_backward(
            bins.tiles_x * bins.tiles_y, bins.tiles_x, tile_size, width, height, F,
            _ptr(bins.offsets), _ptr(bins.gaussian_ids), _ptr(means2d), _ptr(conics), _ptr(opacities),
            _ptr(features), _ptr(t_final), _ptr(n_contrib), _ptr(v_out), _ptr(v_alpha),
            _ptr(v_means2d), _ptr(v_conics), _ptr(v_opac), _ptr(v_feat), None if v_abs is None else _ptr(v_abs),
            torch.get_num_threads())
        ids = bins.gaussian_ids
        if v_abs is not None:
            ctx.absgrad.index_add_(0, ids, v_abs.to(ctx.absgrad.dtype))
        N = means2d.shape[0]
        grads = tuple(torch.zeros(N, *v.shape[1:], device="cpu").index_add_(0, ids, v)
                      for v in (v_means2d, v_conics, v_opac, v_feat))
        return (*grads, None, None, None, None, None)


def composite_cpu(bins: TileBins, means2d: Tensor, conics: Tensor, opacities: Tensor, features: Tensor,
                  width: int, height: int, tile_size: int, absgrad: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Same contract as `torch_backend.composite`: features `[H, W, F]` and alpha `[H, W, 1]`."""
    if features.shape[-1] > 64:
        raise ValueError("the CPU kernel composites at most 64 channels")
    dtype = means2d.dtype
    out, alpha = _Composite.apply(means2d, conics, opacities, features, bins, width, height, tile_size, absgrad)
    return out.to(dtype), alpha.to(dtype)


def rasterize_cpu(means, quats, scales, opacities, colors, world_to_cam, K, width, height,
                  background, options: RenderOptions) -> RenderOutput:
    """Same arguments and shapes as `rasterize_torch`; CPU tensors."""
    return rasterize_torch(means, quats, scales, opacities, colors, world_to_cam, K, width, height,
                           background, options, composite_fn=composite_cpu)
