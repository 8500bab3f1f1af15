"""The splat model: a dict of raw (unactivated) parameters, as gsplat's trainers keep it.

    means      [N, 3]      world positions
    quats      [N, 4]      wxyz rotations (any norm; normalised when rendered)
    scales     [N, 3]      log standard deviations
    opacities  [N]         logit opacities
    sh0        [N, 1, 3]   degree-0 spherical-harmonic colour
    shN        [N, K-1, 3] higher SH bands, K = (max degree + 1)^2

A strategy (densification) edits this dict and the optimizers together, so the dict is the one
source of truth and checkpoints are a plain `state_dict`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from spatial.errors import file_error
from spatial.render import RenderOptions, RenderOutput, num_sh_bases, rasterize, rgb_to_sh
from spatial.transforms import MAX_COORDINATE

PARAM_NAMES = ("means", "quats", "scales", "opacities", "sh0", "shN")


def init_splats(points: Tensor, colors: Tensor, sh_degree: int, init_opacity: float = 0.1,
                init_scale: float = 1.0) -> torch.nn.ParameterDict:
    """Gaussians at `points [P, 3]` with colours `[P, 3]` in 0-1, sized by their neighbours' distance.

    The parameters are made on the points' device.
    """
    points = points.float()
    N, device = points.shape[0], points.device
    dist = nearest_neighbour_distance(points, k=3)  # [N]
    scales = torch.log(dist.clamp_min(1e-7) * init_scale)[:, None].repeat(1, 3)
    quats = torch.zeros(N, 4, device=device)
    quats[:, 0] = 1.0
    shN = torch.zeros(N, num_sh_bases(sh_degree) - 1, 3, device=device)
    logit = math.log(init_opacity / (1 - init_opacity))
    return torch.nn.ParameterDict({
        "means": torch.nn.Parameter(points.clone()),
        "quats": torch.nn.Parameter(quats),
        "scales": torch.nn.Parameter(scales),
        "opacities": torch.nn.Parameter(torch.full((N,), logit, device=device)),
        "sh0": torch.nn.Parameter(rgb_to_sh(colors.float().to(device))[:, None, :]),
        "shN": torch.nn.Parameter(shN),
    })


def sh_degree_of(params: dict[str, Tensor]) -> int:
    """The SH degree that `shN [N, K-1, 3]` holds: K = (degree + 1)^2."""
    return int(round(math.sqrt(params["shN"].shape[1] + 1))) - 1


def random_points(count: int, center: Tensor, radius: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Points uniform in a cube of half-size `radius` around `center`, with random colours (on the
    generator's device)."""
    device = generator.device
    points = center.to(device) + (torch.rand(count, 3, generator=generator, device=device) * 2 - 1) * radius
    return points, torch.rand(count, 3, generator=generator, device=device)


def nearest_neighbour_distance(points: Tensor, k: int = 3, chunk: int = 4096) -> Tensor:
    """Root mean square distance `[N]` to each point's k nearest neighbours (3DGS's initial scale)."""
    out = torch.empty(points.shape[0], dtype=points.dtype, device=points.device)
    chunk = max(1, min(chunk, (1 << 26) // max(points.shape[0], 1)))  # a [chunk, N] block of at most 256 MB
    for start in range(0, points.shape[0], chunk):
        d = torch.cdist(points[start:start + chunk], points)  # [chunk, N]
        nearest = torch.topk(d, min(k + 1, points.shape[0]), largest=False).values[:, 1:]  # skip itself
        out[start:start + chunk] = torch.sqrt((nearest**2).mean(-1))
    return out


def render_splats(splats: torch.nn.ParameterDict, world_to_cam: Tensor, K: Tensor, width: int, height: int,
                  sh_degree: int, background: Tensor | None = None,
                  options: RenderOptions | None = None) -> RenderOutput:
    """Render raw parameters (activated here) from cameras `world_to_cam [C, 4, 4]`, `K [C, 3, 3]`."""
    options = options or RenderOptions()
    options = RenderOptions(**{**options.__dict__, "sh_degree": sh_degree})
    colors = torch.cat([splats["sh0"], splats["shN"]], dim=1)  # [N, K, 3]
    return rasterize(
        splats["means"], splats["quats"], torch.exp(splats["scales"]), torch.sigmoid(splats["opacities"]),
        colors, world_to_cam, K, width, height, background=background, options=options,
    )


MAX_LOG_SCALE = 30.0  # e^30 is 1e13 scene units: a file with larger Gaussians is broken, not a scene
MIN_LOG_SCALE = -40.0  # e^-40 is 4e-18 scene units: no capture or tool makes Gaussians that small
MAX_SH = 1e3  # |SH coefficient|: a colour of 0.5 + 0.28 * 1000 is no colour a photo has
RANGES = (("means", "positions", -MAX_COORDINATE, MAX_COORDINATE, "scene units from the origin"),
          ("scales", "log-scales", MIN_LOG_SCALE, MAX_LOG_SCALE, "sizes of e^-40 to e^30"),
          ("sh0", "colours (SH degree 0)", -MAX_SH, MAX_SH, "SH coefficients"),
          ("shN", "higher SH coefficients", -MAX_SH, MAX_SH, "SH coefficients"))


def check_splats(path: Path | str, params: dict[str, torch.Tensor],
                 damaged: str = "the file is damaged") -> dict[str, torch.Tensor]:
    """Refuse parameters no renderer can use: none at all, NaN or infinity, zero rotations, values outside their
    physical range (`RANGES`: positions, sizes, colours); each refusal names the file, the field and the value."""
    N = params["means"].shape[0]
    if N == 0:
        raise file_error(path, "holds no Gaussians")
    for name, value in params.items():
        if not bool(torch.isfinite(value).all()):
            raise file_error(path, f"{name} of some Gaussians is NaN or infinite")
    zero = int((torch.linalg.norm(params["quats"].double(), dim=-1) < 1e-12).sum())
    if zero:
        raise file_error(path, f"{zero:,} of {N:,} Gaussians have a zero rotation quaternion")
    for key, what, lo, hi, unit in RANGES:
        if params[key].numel():
            low, high = float(params[key].min()), float(params[key].max())
            if low < lo or high > hi:
                raise file_error(path, f"{what} reach {low if low < lo else high:.4g}, outside {lo:g} to {hi:g} "
                                       f"({unit}); {damaged}")
    return params
