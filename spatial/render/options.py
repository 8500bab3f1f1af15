"""What a render call takes besides the Gaussians and cameras, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

# backend name -> (module, function of `rasterize`'s arguments): the one list of render backends, which
# `RenderOptions.backend`'s choices and `rasterize` both read (a new backend is a module and a line here)
BACKENDS = {
    "torch": ("spatial.render.torch_backend", "rasterize_torch"),
    "cpu": ("spatial.render.cpu_backend", "rasterize_cpu"),
    "gsplat": ("spatial.render.gsplat_backend", "rasterize_gsplat"),
}

# Shared by every backend, and equal to gsplat's so the two agree pixel for pixel.
ALPHA_MIN = 1.0 / 255.0  # Gaussians fainter than this at a pixel are skipped
ALPHA_MAX = 0.999  # gsplat's clamp (the original 3DGS code used 0.99)
TRANSMITTANCE_MIN = 1e-4  # a pixel stops once less light than this would pass
EXTEND_MAX = 3.33  # bounding-box half-size in standard deviations


@dataclass
class RenderOptions:
    sh_degree: int | None = 3
    """Spherical-harmonics degree to evaluate (0-3); None when `colors` are plain RGB [N, 3]."""
    near: float = 0.01
    """Gaussians nearer than this (camera z) are culled."""
    far: float = 1e10
    """Gaussians farther than this are culled."""
    eps2d: float = 0.3
    """Low-pass filter: variance in pixels added to every projected covariance."""
    antialiased: bool = False
    """Mip-Splatting's anti-aliased variant: scale opacity to conserve energy under eps2d."""
    tile_size: int = 16
    """Side of the square screen tiles that Gaussians are binned into."""
    absgrad: bool = False
    """Also sum each pixel's absolute gradient to the projected centres (AbsGS): `means2d.absgrad` after
    backward, as in gsplat. A strategy that reads it turns it on."""
    camera_model: Literal["pinhole", "equirect"] = "pinhole"
    """pinhole: `K` holds focal lengths and the principal point in pixels. equirect: an equirectangular panorama
    (spatial.render.projection.project_equirect): `K`'s fx and fy are pixels per radian of longitude and latitude,
    (cx, cy) the pixel straight ahead; a panorama as wide as a whole turn wraps around. Drawn by the torch and cpu
    backends (gsplat's has no such camera: auto picks torch for it on CUDA)."""
    backend: Literal[("auto", *BACKENDS)] = "auto"
    """auto: gsplat for CUDA tensors (if installed), the C kernel for CPU tensors (if it compiles), else torch."""


@dataclass
class RenderOutput:
    rgb: Tensor  # [C, H, W, 3] composited over the background
    alpha: Tensor  # [C, H, W, 1] accumulated opacity
    depth: Tensor  # [C, H, W, 1] expected camera-z depth (alpha-normalised; 0 where alpha is 0)
    means2d: Tensor  # [C, N, 2] projected centres; call .retain_grad() before backward to read their gradient
    # (and with `RenderOptions.absgrad`, `means2d.absgrad` [C, N, 2] holds the summed absolute gradients after it)
    radii: Tensor  # [C, N, 2] int32 bounding-box half-sizes in pixels; 0 where culled
    depths: Tensor  # [C, N] camera-z of each Gaussian centre

    @property
    def visible(self) -> Tensor:  # [C, N] bool
        return (self.radii > 0).all(dim=-1)
