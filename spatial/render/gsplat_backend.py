"""gsplat's CUDA rasterizer behind our interface (the `cuda` extra). Imported only when used.

Read against gsplat 1.5.3's `gsplat.rendering.rasterization` (and checked by tests/test_gsplat_parity.py
on a GPU, tests/test_gsplat_reference.py against its pure-PyTorch twins on the CPU):
- `packed=False`: per-camera outputs are dense `[C, N, ...]`, as our `RenderOutput` is; `radii` is
  `[C, N, 2]` int32 since 1.5 (one radius per Gaussian before), 0 where culled.
- `meta["means2d"]` `[C, N, 2]` is the tensor the rasterizer differentiates: `retain_grad()` on it
  gives the screen-space gradient (pixels) that densification reads, as gsplat's own DefaultStrategy
  does. With `absgrad=True` gsplat's backward sets `meta["means2d"].absgrad`, the contract our backends
  keep too.
- `rasterize_mode="antialiased"` scales opacity by `sqrt(det(cov2d) / det(cov2d + eps2d I))`, as ours.
- `render_mode="RGB+ED"`: depth is the last channel, normalised by alpha (`clamp(min=1e-10)`) with a zero
  background, as our backends compute it.
- `camera_model="pinhole"` (the default), `radius_clip=0`; quaternions are normalised inside.
- Inputs must be float32 CUDA tensors; `backgrounds` is `[C, 3]`.

Importing gsplat where there is no CUDA device is never done: on a machine with `nvcc` it starts a JIT
build of its kernels that cannot succeed without a GPU.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from spatial.errors import SpatialError
from spatial.render.options import RenderOptions, RenderOutput


@functools.cache
def gsplat_problem() -> str | None:
    """None when gsplat's CUDA kernels can run here, else why not (one line).

    The first call on a machine builds gsplat's kernels when its wheel ships none (gsplat prints that
    it does; a few minutes), so it is made only where a CUDA device exists.
    """
    if not torch.cuda.is_available():
        return "there is no CUDA device"
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return "gsplat is not installed (pip install -e '.[cuda]')"
    try:
        from gsplat.cuda._backend import _C
    except Exception as e:  # noqa: BLE001 - a failed build surfaces as any kind of error
        return f"gsplat's CUDA kernels could not be built or loaded ({type(e).__name__}: {e})"
    if _C is None:
        return "gsplat's CUDA kernels could not be built or loaded (see gsplat's messages above)"
    return None


def gsplat_available() -> bool:
    return gsplat_problem() is None


def rasterize_gsplat(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
    world_to_cam: Tensor, K: Tensor, width: int, height: int, background: Tensor | None, options: RenderOptions,
) -> RenderOutput:
    """Same arguments and shapes as `rasterize_torch`; CUDA tensors."""
    if options.camera_model != "pinhole":
        raise ValueError(f"gsplat's rasterizer draws pinhole cameras, not {options.camera_model}; "
                         "the torch backend draws panoramas")
    problem = gsplat_problem()
    if problem is not None:
        raise SpatialError(f"the gsplat rasterizer cannot run: {problem}; choose another with "
                           "--step.render.backend torch (or auto)")
    from gsplat import rasterization

    colors_out, alphas, meta = rasterization(
        means, quats, scales, opacities, colors, world_to_cam, K, width, height,
        near_plane=options.near, far_plane=options.far, eps2d=options.eps2d, sh_degree=options.sh_degree,
        packed=False, tile_size=options.tile_size, backgrounds=background, render_mode="RGB+ED",
        rasterize_mode="antialiased" if options.antialiased else "classic", absgrad=options.absgrad,
    )
    radii = meta["radii"]
    if radii.dim() == 2:  # gsplat < 1.5 returned one radius per Gaussian
        radii = radii[..., None].expand(-1, -1, 2)
    return RenderOutput(colors_out[..., :3], alphas, colors_out[..., 3:4], meta["means2d"], radii.int(),
                        meta["depths"])
