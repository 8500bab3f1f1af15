"""Choosing Gaussians: masks by opacity, size and region, and applying them to raw parameters.

Masks are `[N]` bool tensors, so they combine with `&`, `|` and `~`; the viewer's selection tools
and the exporters' filters are both built from these.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spatial.render.sh import C0


def by_opacity(params: dict[str, Tensor], min_opacity: float) -> Tensor:  # [N]
    """Gaussians at least this opaque (activated opacity in 0-1)."""
    return torch.sigmoid(params["opacities"]) >= min_opacity


def by_scale(params: dict[str, Tensor], max_scale: float) -> Tensor:  # [N]
    """Gaussians whose largest standard deviation is at most `max_scale` (world units)."""
    return torch.exp(params["scales"]).max(dim=-1).values <= max_scale


def in_box(params: dict[str, Tensor], box_min: Tensor, box_max: Tensor) -> Tensor:  # [N]
    """Gaussians whose centre lies in the axis-aligned box `[box_min, box_max]` (each [3])."""
    means = params["means"]
    return ((means >= box_min.to(means)) & (means <= box_max.to(means))).all(dim=-1)


def in_oriented_box(params: dict[str, Tensor], box_to_world: Tensor, half_size: Tensor) -> Tensor:  # [N]
    """Centres inside a box with pose `box_to_world [4, 4]` and half extents `half_size [3]`."""
    means = params["means"]
    R, t = box_to_world[:3, :3].to(means), box_to_world[:3, 3].to(means)
    local = (means - t) @ R  # R orthonormal: world -> box axes
    return (local.abs() <= half_size.to(means)).all(dim=-1)


def in_sphere(params: dict[str, Tensor], center: Tensor, radius: float) -> Tensor:  # [N]
    return (params["means"] - center.to(params["means"])).norm(dim=-1) <= radius


def base_colour(params: dict[str, Tensor]) -> Tensor:  # [N, 3]
    """The view-independent colour (degree-0 SH) in RGB 0-1, unclamped."""
    return params["sh0"][:, 0] * C0 + 0.5


def subset(params: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
    """A new parameter dict holding only the Gaussians where `mask [N]` is true."""
    return {k: v.detach()[mask] for k, v in params.items()}


def importance(params: dict[str, Tensor], cameras=None, max_cameras: int = 32) -> Tensor:  # [N]
    """How much each Gaussian shows in the picture: its blending weight (alpha x transmittance) summed over the
    pixels of up to `max_cameras` of `cameras` (LightGaussian's global significance), taken as the gradient of
    the rendered image with respect to each Gaussian's colour; without cameras, opacity x the area of its two
    largest axes (a view-independent stand-in)."""
    from spatial.splats.model import render_splats

    scales = torch.exp(params["scales"].detach()).sort(dim=-1).values  # [N, 3], ascending
    if cameras is None:
        return torch.sigmoid(params["opacities"].detach()) * scales[:, 1] * scales[:, 2]
    p = {k: v.detach() for k, v in params.items()}
    colour = torch.zeros_like(p["sh0"], requires_grad=True)  # [N, 1, 3]: rendered = sum_i (C0 c_i + 0.5) w_i
    flat = {**p, "sh0": colour, "shN": p["shN"][:, :0]}
    step = max(1, len(cameras) // max_cameras)
    with torch.enable_grad():
        for i in range(0, len(cameras), step):
            cam = cameras[i]
            out = render_splats(flat, cam.world_to_cam.to(colour.device), cam.K.to(colour.device),
                                int(cam.width[0]), int(cam.height[0]), 0)
            out.rgb.sum().backward()
    return colour.grad.sum(dim=(1, 2))


def most_important(params: dict[str, Tensor], count: int, cameras=None) -> Tensor:  # [N] bool
    """The `count` Gaussians of highest `importance` (all of them when there are no more)."""
    N = params["means"].shape[0]
    mask = torch.zeros(N, dtype=torch.bool, device=params["means"].device)
    mask[importance(params, cameras).topk(min(count, N)).indices] = True
    return mask
