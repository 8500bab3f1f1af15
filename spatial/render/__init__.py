"""Gaussian splat rendering: one stateless function, three interchangeable backends.

    out = rasterize(means, quats, scales, opacities, sh, world_to_cam, K, width, height)
    out.rgb      # [C, H, W, 3]
    out.means2d  # [C, N, 2], for densification statistics

Backends take the same inputs and give the same outputs: `torch` (ours, pure PyTorch, any device;
the reference), `cpu` (ours: the same with compositing in a C/OpenMP kernel compiled on first use)
and `gsplat` (CUDA kernels). `RenderOptions.backend="auto"` picks gsplat for CUDA tensors when it
is installed, the C kernel for CPU tensors when it compiles, and the torch backend otherwise.
A backend is a module with a function of `rasterize`'s arguments and one line in `BACKENDS`
(spatial/render/options.py), which `RenderOptions.backend`'s choices are made from; each is held to the torch
reference by the tests.
"""

from __future__ import annotations

import functools
import importlib
import warnings

from torch import Tensor

from spatial.render.options import BACKENDS, RenderOptions, RenderOutput
from spatial.render.sh import num_sh_bases, rgb_to_sh, sh_to_rgb

__all__ = ["BACKENDS", "RenderOptions", "RenderOutput", "backend_for", "num_sh_bases", "rasterize", "rgb_to_sh",
           "sh_to_rgb"]


def backend_for(device, options: RenderOptions) -> str:
    """The backend `options.backend` names, resolving 'auto' for tensors on `device`."""
    if options.backend != "auto":
        return options.backend
    if str(device).startswith("cuda") and options.camera_model == "pinhole":
        from spatial.render.gsplat_backend import gsplat_problem

        problem = gsplat_problem()
        if problem is not None:
            _warn_once(f"rendering with the portable torch rasterizer: {problem}")
        return "gsplat" if problem is None else "torch"
    if str(device) == "cpu":
        from spatial.render.cpu_backend import kernel_available

        return "cpu" if kernel_available() else "torch"
    return "torch"


@functools.cache
def _warn_once(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def rasterize(
    means: Tensor,  # [N, 3] world positions
    quats: Tensor,  # [N, 4] wxyz rotations (normalised inside)
    scales: Tensor,  # [N, 3] standard deviations along the Gaussian's axes (activated, > 0)
    opacities: Tensor,  # [N] in 0-1 (activated)
    colors: Tensor,  # [N, K, 3] SH coefficients, or [N, 3] RGB when options.sh_degree is None
    world_to_cam: Tensor,  # [C, 4, 4] OpenCV world -> camera
    K: Tensor,  # [C, 3, 3] pinhole intrinsics in pixels
    width: int,
    height: int,
    background: Tensor | None = None,  # [C, 3] or [3] colour behind the Gaussians; None is black
    options: RenderOptions | None = None,
) -> RenderOutput:
    options = options or RenderOptions()
    if background is not None and background.dim() == 1:
        background = background.expand(world_to_cam.shape[0], 3)
    name = backend_for(means.device, options)
    if name not in BACKENDS:
        raise ValueError(f"unknown render backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    module, function = BACKENDS[name]
    backend = getattr(importlib.import_module(module), function)
    return backend(means, quats, scales, opacities, colors, world_to_cam, K, width, height, background, options)
