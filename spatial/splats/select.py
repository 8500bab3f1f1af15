"""Choosing Gaussians: masks by opacity, size and region, and applying them to raw parameters.

Masks are `[N]` bool tensors, so they combine with `&`, `|` and `~`; the viewer's selection tools
and the exporters' filters are both built from these.
"""

from __future__ import annotations

import torch
from torch import Tensor


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


def subset(params: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
    """A new parameter dict holding only the Gaussians where `mask [N]` is true."""
    return {k: v.detach()[mask] for k, v in params.items()}
