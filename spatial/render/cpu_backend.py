"""The CPU backend: the torch backend's projection and binning, compositing in the C kernel.

Forward and backward are hand-written in `cpu_kernel/composite.c`; the backward walks each pixel's
Gaussians back to front (as gsplat's CUDA kernel does) instead of keeping autograd's
per-intersection intermediates, so it is both faster and leaner than the pure-PyTorch path,
which stays as the reference it is tested against.

The backend also brings the SSIM its training loss takes (`ssim_cpu`, `cpu_kernel/ssim.c`): the same quantity as
`spatial.metrics.ssim`, which stays its reference, by separable blurs instead of five 2D convolutions.
"""

from __future__ import annotations

import ctypes
import functools

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
        N = means2d.shape[0]
        per_intersection = [v_means2d, v_conics, v_opac, v_feat] + ([] if v_abs is None else [v_abs])
        grads = [torch.empty(N, *v.shape[1:], device="cpu") for v in per_intersection]  # [N, ...] each
        widths = [v.shape[1:].numel() for v in per_intersection]  # floats per row
        pointers = ctypes.c_void_p * len(grads)
        lib.sum_by_gaussian(M, N, _ptr(bins.gaussian_ids), len(grads), pointers(*map(_ptr, per_intersection)),
                            pointers(*map(_ptr, grads)), (ctypes.c_int * len(widths))(*widths),
                            torch.get_num_threads())
        if v_abs is not None:
            ctx.absgrad += grads.pop().to(ctx.absgrad.dtype)
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


SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # spatial.metrics.ssim's defaults


@functools.cache
def _ssim_window() -> Tensor:
    """spatial.metrics.ssim's 1D window `[SSIM_WINDOW]` (its 2D window is the outer product)."""
    from spatial.metrics import gaussian_window

    return gaussian_window(SSIM_WINDOW, SSIM_SIGMA, "cpu", torch.float32)


class _SSIM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:  # a, b [H, W, C]; b is a constant (no gradient)
        lib = cpu_kernel.load_ssim()
        a, b = a.contiguous().float(), b.detach().contiguous().float()
        H, W, C = a.shape
        moments = torch.empty(5, C, H, W, device="cpu")  # blurred a, b, a^2, b^2, ab
        total = ctypes.c_double()
        g = _ssim_window()
        lib.ssim_forward(H, W, C, _ptr(a), _ptr(b), _ptr(g), SSIM_WINDOW // 2, _ptr(moments), ctypes.byref(total),
                         torch.get_num_threads())
        ctx.save_for_backward(a, b, moments)
        return torch.full((), total.value / (H * W * C), device="cpu")

    @staticmethod
    def backward(ctx, grad: Tensor):
        lib = cpu_kernel.load_ssim()
        a, b, moments = ctx.saved_tensors
        H, W, C = a.shape
        grad_a = torch.empty_like(a)
        lib.ssim_backward(H, W, C, _ptr(a), _ptr(b), _ptr(_ssim_window()), SSIM_WINDOW // 2, _ptr(moments),
                          1.0 / (H * W * C), _ptr(grad_a), torch.get_num_threads())
        return grad_a * grad, None  # the upstream gradient as a tensor: reading it as a number would wait for it


def ssim_cpu(a: Tensor, b: Tensor) -> Tensor:
    """Mean SSIM of images `[B, H, W, C]` in 0-1 as `spatial.metrics.ssim` gives it, by the C kernel (CPU tensors;
    `b` is taken as a constant, as the training target is); `spatial.metrics.ssim` where the kernel is unavailable."""
    from spatial.metrics import ssim

    if cpu_kernel.load_ssim() is None or b.requires_grad:
        return ssim(a, b)
    values = [_SSIM.apply(a[i], b[i]) for i in range(a.shape[0])]
    return (sum(values[1:], values[0]) / len(values)).to(a.dtype)
