"""The NeRF model: two proposal density fields, then the radiance field (nerfacto's design).

    model = NerfModel(space, config, num_images)
    out = model(origins, dirs, image_ids, background)      # rays [R, 3] -> rgb [R, 3], alpha, depth, ...
    frame = model.render_camera(camera, background)          # a whole image, in chunks of rays

Each ray starts with `proposal_samples[0]` uniform intervals; every proposal level's weights are
resampled into fewer, better-placed intervals (`pdf_edges`), and the last set feeds the radiance
field. The proposal fields learn only from `interlevel_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.distortion import CameraModel
from spatial.errors import SpatialError, file_error
from spatial.nerf.field import DensityField, FieldConfig, RadianceField, SpaceMap
from spatial.nerf.hash_encoding import HashConfig
from spatial.nerf.rendering import composite, render_weights
from spatial.nerf.sampling import Spacing, pdf_edges, ray_box, uniform_edges


@dataclass
class ModelConfig:
    field: FieldConfig = field(default_factory=FieldConfig)
    """The radiance field."""
    proposal_hash: tuple[HashConfig, ...] = (
        HashConfig(levels=5, log2_table_size=17, min_resolution=16, max_resolution=128),
        HashConfig(levels=5, log2_table_size=17, min_resolution=16, max_resolution=256),
    )
    """Hash grids of the proposal fields, coarsest first (one per proposal level)."""
    proposal_samples: tuple[int, ...] = (256, 96)
    """Intervals per ray evaluated by each proposal field (the first are uniform)."""
    field_samples: int = 48
    """Intervals per ray evaluated by the radiance field."""
    anneal_steps: int = 1000
    """Steps over which proposal weights sharpen from flat to as-is (nerfacto's annealing)."""
    near: float = 0.05
    """Closest distance sampled along a ray, relative to the scene radius."""
    far: float = 1000.0
    """Farthest distance sampled in unbounded scenes, relative to the scene radius."""


@dataclass
class RayOutput:
    rgb: Tensor  # [R, 3] composited over the background
    alpha: Tensor  # [R] accumulated opacity
    depth: Tensor  # [R] expected distance along the ray (alpha-normalised)
    edges: Tensor  # [R, S + 1] final intervals, normalised spacing
    weights: Tensor  # [R, S]
    proposals: list[tuple[Tensor, Tensor]]  # per proposal level: (edges, weights)
    spacing: Spacing  # the rays' distances to and from the edges' normalised spacing
    extra_density: list[Tensor] | None = None  # per field (radiance, then proposals): density [N] at `extra` points


def check_model_config(config: ModelConfig) -> None:
    """Refuse settings no model can be built from (a SpatialError naming the option), before anything is allocated."""
    if len(config.proposal_hash) != len(config.proposal_samples):
        raise SpatialError(f"--model.proposal-samples has {len(config.proposal_samples)} levels but there are "
                           f"{len(config.proposal_hash)} proposal hash grids; give one sample count per grid")

    def within(flag: str, value, lo, hi) -> None:
        if not lo <= value <= hi:
            raise SpatialError(f"--{flag} must be between {lo:g} and {hi:g}, got {value!r}")

    grids = [("model.field.hash", config.field.hash)] + \
            [(f"model.proposal-hash.{i}", h) for i, h in enumerate(config.proposal_hash)]
    for flag, h in grids:
        within(f"{flag}.levels", h.levels, 1, 32)
        within(f"{flag}.features-per-level", h.features_per_level, 1, 8)
        within(f"{flag}.log2-table-size", h.log2_table_size, 4, 24)
        within(f"{flag}.min-resolution", h.min_resolution, 1, 2**16)
        within(f"{flag}.max-resolution", h.max_resolution, h.min_resolution, 2**16)
    f = config.field
    within("model.field.hidden", f.hidden, 1, 1024)
    within("model.field.geo-features", f.geo_features, 1, 256)
    within("model.field.colour-layers", f.colour_layers, 0, 16)
    within("model.field.direction-sh-degree", f.direction_sh_degree, 0, 4)
    within("model.field.appearance-dim", f.appearance_dim, 0, 256)
    for samples in config.proposal_samples:
        within("model.proposal-samples", samples, 1, 4096)
    within("model.field-samples", config.field_samples, 1, 4096)
    within("model.anneal-steps", config.anneal_steps, 0, 10**9)
    within("model.near", config.near, 1e-6, 1e3)
    within("model.far", config.far, config.near, 1e9)


def check_weights(checkpoint: Path, model: torch.nn.Module, weights) -> None:
    """`weights` is a state dict for `model` (built on the meta device): the same names and shapes, finite."""
    own = model.state_dict()
    if not isinstance(weights, dict) or set(weights) != set(own):
        names = set(weights) if isinstance(weights, dict) else set()
        raise file_error(checkpoint, f"its weights do not match its config: {len(own)} expected, {len(names)} there "
                                     f"(first difference: {sorted(names ^ set(own))[:1]})")
    for name, tensor in weights.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != own[name].shape:
            raise file_error(checkpoint, f"weight {name} is {tuple(getattr(tensor, 'shape', ()))} where its config "
                                         f"builds {tuple(own[name].shape)}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise file_error(checkpoint, f"weight {name} holds NaN or infinite values; the run diverged or the file "
                                         "is damaged")


class NerfModel(torch.nn.Module):
    def __init__(self, space: SpaceMap, config: ModelConfig, num_images: int):
        super().__init__()
        check_model_config(config)
        self.space, self.config = space, config
        self.proposals = torch.nn.ModuleList([DensityField(space, h) for h in config.proposal_hash])
        self.field = RadianceField(space, config.field, num_images)

    @property
    def radius(self) -> float:
        return self.space.radius

    def near_far(self, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor, Spacing]:
        near = self.config.near * self.radius
        if self.space.bounded:
            lo = self.space.center - self.space.half_size
            t0, t1 = ray_box(origins, dirs, lo, self.space.center + self.space.half_size)
            t0 = t0.clamp(min=near)
            t1 = torch.maximum(t1, t0 + 1e-4)  # rays that miss: a sliver with no density
            return t0, t1, Spacing(t0, t1)
        t0 = torch.full_like(origins[:, 0], near)
        t1 = torch.full_like(t0, self.config.far * self.radius)
        return t0, t1, Spacing(t0, t1, self.radius)

    def forward(self, origins: Tensor, dirs: Tensor, image_ids: Tensor | None, background: Tensor,
                step: int | None = None, generator: torch.Generator | None = None,
                extra: Tensor | None = None) -> RayOutput:
        """Render rays `origins, dirs [R, 3]` (unit dirs). `step` is given in training: it jitters the
        samples and anneals the proposal weights; None renders deterministically. `extra [N, 3]`: world points
        whose density in every field is wanted too (`RayOutput.extra_density`), looked up in the same passes."""
        training = step is not None
        _, _, spacing = self.near_far(origins, dirs)
        R = origins.shape[0]
        anneal = 1.0 if not training else _anneal(min(step / max(self.config.anneal_steps, 1), 1.0))
        edges = uniform_edges(R, self.config.proposal_samples[0], training, origins.device, generator)
        proposals, extra_density = [], []
        for level, proposal in enumerate(self.proposals):
            t = spacing.to_t(edges)
            points = _points(origins, dirs, t)  # [R * S, 3]
            sigma = proposal.density(points if extra is None else torch.cat([points, extra]))
            if extra is not None:
                extra_density.append(sigma[len(points):])
            sigma = sigma[:len(points)].reshape(R, -1)
            weights = render_weights(sigma, t * self.space.density_scale)
            proposals.append((edges, weights))
            n = self.config.proposal_samples[level + 1] if level + 1 < len(self.proposals) \
                else self.config.field_samples
            edges = pdf_edges(edges, weights.detach() ** anneal, n, training, generator)
        t = spacing.to_t(edges)
        sigma, rgb, extra_sigma = self.field.with_extra(_points(origins, dirs, t).reshape(R, -1, 3), dirs, image_ids,
                                                        extra)
        weights = render_weights(sigma, t * self.space.density_scale)  # t in the unit densities are per (radii)
        alpha = weights.sum(-1)
        colour = composite(weights, rgb) + (1 - alpha[:, None]) * background
        mids = (t[:, 1:] + t[:, :-1]) / 2
        depth = (weights * mids).sum(-1) / alpha.clamp(min=1e-6)
        return RayOutput(colour, alpha, depth, edges, weights, proposals, spacing,
                         None if extra is None else [extra_sigma, *extra_density])

    @torch.no_grad()
    def render_camera(self, camera: Cameras, background: Tensor, chunk: int = 8192,
                      image_id: int | None = None) -> dict[str, Tensor]:
        """One camera's image: `rgb [H, W, 3]`, `alpha [H, W, 1]`, camera-z `depth [H, W, 1]` (a panorama's: the
        distance); with the appearance
        embedding of scene image `image_id`, or the training images' mean (None)."""
        H, W = int(camera.height[0]), int(camera.width[0])
        device = next(self.parameters()).device
        cam = camera.to(device)
        origins, dirs = (r.reshape(-1, 3) for r in cam.rays(0))  # [H * W, 3] each
        forward = cam.cam_to_world[0, :3, 2]
        panorama = cam.model == CameraModel.EQUIRECTANGULAR
        parts = {"rgb": [], "alpha": [], "depth": []}
        for i in range(0, origins.shape[0], chunk):
            ids = None if image_id is None else torch.full((min(chunk, origins.shape[0] - i),), image_id, device=device)
            out = self(origins[i:i + chunk], dirs[i:i + chunk], ids, background.to(device))
            parts["rgb"].append(out.rgb)
            parts["alpha"].append(out.alpha[:, None])
            # distance along the ray -> camera z (a panorama's depth is the distance itself)
            z = out.depth if panorama else out.depth * (dirs[i:i + chunk] @ forward)
            parts["depth"].append(torch.where(out.alpha > 1e-4, z, torch.zeros_like(z))[:, None])
        return {k: torch.cat(v).reshape(H, W, -1) for k, v in parts.items()}


def _points(origins: Tensor, dirs: Tensor, edges_t: Tensor) -> Tensor:
    """Interval midpoints `[R * S, 3]` for distance edges `[R, S + 1]`."""
    mids = (edges_t[:, 1:] + edges_t[:, :-1]) / 2  # [R, S]
    return (origins[:, None] + dirs[:, None] * mids[..., None]).reshape(-1, 3)


def _anneal(fraction: float, bias: float = 10.0) -> float:
    return bias * fraction / ((bias - 1) * fraction + 1)
