"""The radiance field: hash-grid features -> density and a geometry feature -> view-dependent colour.

Points enter in world coordinates and are mapped into the hash grid's unit cube by the scene's
`SpaceMap`: a known box for bounded object scenes, or the mip-NeRF 360 contraction for unbounded
captures (everything outside the unit ball of the normalised scene is squeezed into radius 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor

from spatial.nerf.hash_encoding import HashConfig, HashEncoding
from spatial.render.sh import sh_basis


@dataclass
class SpaceMap:
    """World points -> the hash grid's unit cube. `bounded`: points outside the box get no density."""

    center: Tensor  # [3] world centre of the box (bounded) or of the scene (unbounded)
    half_size: Tensor  # [3] box half sizes (bounded), or the radius that maps to the unit ball (unbounded)
    bounded: bool = True
    density_scale: float = 1.0
    """Optical depth per world unit of a density of 1: 1 / radius for a model trained since densities were made
    independent of the scene's units (a scene in millimetres then starts as a scene in metres does: with a light
    haze, not a wall of fog 1000 times thicker); 1 for checkpoints from before, whose densities are per world unit."""

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Unit-cube coordinates `[N, 3]` of world points `[N, 3]` and whether they are inside `[N]`."""
        p = (x - self.center.to(x)) / self.half_size.to(x)  # [-1, 1] inside the box / the unit ball
        if self.bounded:
            inside = (p.abs() <= 1).all(-1)
            return (p + 1) / 2, inside
        p = contract(p)  # [-2, 2]
        return (p + 2) / 4, torch.ones_like(p[:, 0], dtype=torch.bool)

    @cached_property
    def radius(self) -> float:
        """The largest half size, as a number (read once, not on every render)."""
        return float(self.half_size.max())

    def to(self, device) -> SpaceMap:
        """The same map with its tensors on `device` (the model's), so no render copies them."""
        return SpaceMap(self.center.to(device), self.half_size.to(device), self.bounded, self.density_scale)

    def state(self) -> dict:
        return {"center": self.center.tolist(), "half_size": self.half_size.tolist(), "bounded": self.bounded,
                "density_scale": self.density_scale}

    @classmethod
    def from_state(cls, state: dict) -> SpaceMap:
        """The map `state()` saved, checked (a `ValueError` says what is wrong): finite, positive sizes."""
        def vector(name: str, positive: bool) -> Tensor:
            v = state.get(name) if isinstance(state, dict) else None
            if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                                 and math.isfinite(x) and (x > 0 or not positive)
                                                                 for x in v)):
                raise ValueError(f"space.{name} must be three finite numbers{' above 0' if positive else ''}")
            return torch.tensor(v, dtype=torch.float32, device="cpu")

        bounded = state.get("bounded") if isinstance(state, dict) else None
        if not isinstance(bounded, bool):
            raise ValueError("space.bounded must be true or false")
        scale = state.get("density_scale", 1.0)  # absent from checkpoints whose densities are per world unit
        if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0):
            raise ValueError("space.density_scale must be a finite number above 0")
        return cls(vector("center", False), vector("half_size", True), bounded, float(scale))


def contract(p: Tensor) -> Tensor:
    """mip-NeRF 360's contraction (L-infinity norm, as nerfacto): identity in the unit cube, then
    `(2 - 1/|p|) p/|p|`, so all of space fits in [-2, 2]^3."""
    n = p.abs().amax(-1, keepdim=True).clamp(min=1e-6)
    return torch.where(n <= 1, p, (2 - 1 / n) * p / n)


def mlp(inputs: int, hidden: int, layers: int, outputs: int) -> torch.nn.Sequential:
    dims = [inputs] + [hidden] * layers
    parts: list[torch.nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        parts += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    parts.append(torch.nn.Linear(dims[-1], outputs))
    return torch.nn.Sequential(*parts)


def trunc_exp(x: Tensor) -> Tensor:
    """exp with its input clamped, so one large logit cannot overflow the density (as Instant-NGP)."""
    return torch.exp(x.clamp(max=15.0))


@dataclass
class FieldConfig:
    hash: HashConfig = field(default_factory=HashConfig)
    """Hash grid of the main field."""
    hidden: int = 64
    """Width of the density and colour MLPs."""
    geo_features: int = 15
    """Geometry feature passed from the density MLP to the colour MLP."""
    colour_layers: int = 2
    """Hidden layers of the colour MLP."""
    direction_sh_degree: int = 3
    """Spherical-harmonics degree encoding the view direction ((d+1)^2 values)."""
    appearance_dim: int = 16
    """Per-image appearance embedding size (0: none); test views use the mean embedding."""


class DensityField(torch.nn.Module):
    """The proposal networks' field: a small hash grid and one hidden layer, density only."""

    def __init__(self, space: SpaceMap, hash_config: HashConfig, hidden: int = 16):
        super().__init__()
        self.space = space
        self.encoding = HashEncoding(hash_config)
        self.net = mlp(self.encoding.out_dim, hidden, 1, 1)

    def density(self, x: Tensor) -> Tensor:  # [N, 3] world -> [N]
        u, inside = self.space(x)
        # float32 out of the MLP whatever autocast ran it in: sampling and compositing stay in float32
        sigma = trunc_exp(self.net(self.encoding(u))[:, 0].float() - 1.0)
        return torch.where(inside, sigma, torch.zeros_like(sigma))


class RadianceField(torch.nn.Module):
    def __init__(self, space: SpaceMap, config: FieldConfig, num_images: int):
        super().__init__()
        self.space, self.config = space, config
        self.encoding = HashEncoding(config.hash)
        self.density_net = mlp(self.encoding.out_dim, config.hidden, 1, 1 + config.geo_features)
        self.appearance = torch.nn.Embedding(max(num_images, 1), config.appearance_dim) \
            if config.appearance_dim else None
        if self.appearance is not None:
            torch.nn.init.zeros_(self.appearance.weight)
        dir_dim = (config.direction_sh_degree + 1) ** 2
        self.colour_net = mlp(config.geo_features + dir_dim + config.appearance_dim, config.hidden,
                              config.colour_layers, 3)

    def density(self, x: Tensor) -> Tensor:  # [N, 3] world -> [N]
        return self._density(x)[0]

    def _density(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u, inside = self.space(x)
        h = self.density_net(self.encoding(u)).float()  # float32 whatever autocast ran the MLP in
        sigma = trunc_exp(h[:, 0] - 1.0)
        return torch.where(inside, sigma, torch.zeros_like(sigma)), h[:, 1:]

    def mean_appearance(self) -> Tensor:
        """The training images' mean embedding `[D]`: what a view that is not a training photo (a held-out one, the
        viewer's) is rendered with. The embedding has a row for every image of the scene, and the rows of images
        never trained on (held out) keep their zero start exactly (no gradient reaches them, and Adam moves nothing
        without one), so they are told apart by being zero and left out of the mean."""
        weight = self.appearance.weight  # [images, D]
        trained = (weight != 0).any(1, keepdim=True).to(weight.dtype)  # [images, 1]
        return (weight * trained).sum(0) / trained.sum().clamp_min(1)

    def forward(self, x: Tensor, dirs: Tensor, image_ids: Tensor | None) -> tuple[Tensor, Tensor]:
        """Density `[R, S]` and RGB `[R, S, 3]` at world points `x [R, S, 3]`: S samples on each of R rays
        with unit directions `dirs [R, 3]`. `image_ids [R]` picks each ray's appearance embedding;
        None uses the mean of the training images'.
        """
        sigma, rgb, _ = self.with_extra(x, dirs, image_ids, None)
        return sigma, rgb

    def with_extra(self, x: Tensor, dirs: Tensor, image_ids: Tensor | None,
                   extra: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """`forward`, and the density `[N]` at `extra [N, 3]` more world points (None: none) looked up in the same
        pass: one backward of the hash grid, which fills a whole table's gradient each time, instead of two."""
        R, S, _ = x.shape
        sigma, geo = self._density(x.reshape(-1, 3) if extra is None else torch.cat([x.reshape(-1, 3), extra]))
        sigma, extra_sigma, geo = sigma[:R * S], (None if extra is None else sigma[R * S:]), geo[:R * S]
        per_ray = [sh_basis(dirs, self.config.direction_sh_degree)]  # [R, K]: one per ray, not per sample
        if self.appearance is not None:
            if image_ids is None:
                per_ray.append(self.mean_appearance()[None].expand(R, -1))
            else:
                per_ray.append(self.appearance(image_ids))
        per_ray = torch.cat(per_ray, -1)
        inputs = torch.cat([geo.reshape(R, S, -1), per_ray[:, None].expand(R, S, -1)], -1)
        rgb = torch.sigmoid(self.colour_net(inputs).float())
        return sigma.reshape(R, S), rgb, extra_sigma
