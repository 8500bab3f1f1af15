"""`spatial export points`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro
from rich.console import Console

from spatial.cli.export.paths import output_path
from spatial.errors import SpatialError


@dataclass
class ExportPoints:
    """Export a coloured point cloud (.ply): the splat centres, or points of the rendered depth maps."""

    model: tyro.conf.Positional[Path]
    """Training run folder, checkpoint (.pt), or splat file (any format `spatial export` writes)."""
    out: Path | None = None
    """Output point cloud, .ply (default: exports/points.ply inside the run folder)."""
    source: Literal["centers", "depth"] = "centers"
    """centers: one point per Gaussian, coloured by its base colour; depth: points on the rendered
    surfaces seen by the training cameras (cleaner, needs the scene)."""
    min_opacity: float = 0.1
    """For 'centers': leave out Gaussians less opaque than this."""
    max_points: int = 1_000_000
    """Keep at most this many points (an even random subset)."""
    scene: Path | None = None
    """For 'depth': the scene folder whose cameras to render (default: the run's own)."""

    def main(self) -> None:
        import torch

        from spatial.mesh import depth_points, save_points
        from spatial.render import sh_to_rgb
        from spatial.splats import select
        from spatial.trained import load_model, load_splat_model

        out = output_path(self.model, self.out, "points.ply", ".ply")
        model = load_splat_model(self.model) if self.source == "centers" else load_model(self.model)
        if self.source == "centers":
            mask = select.by_opacity(model.params, self.min_opacity)
            points = model.params["means"][mask]
            colors = sh_to_rgb(model.params["sh0"][mask, 0]).clamp(0, 1)
        else:
            if self.scene is not None:
                model.scene_path = self.scene
            cameras = model.training_cameras()
            parts = [depth_points(o, cameras[i]) for i, o in enumerate(model.render_frames(cameras))]
            points, colors = torch.cat([p for p, _ in parts]), torch.cat([c for _, c in parts])
        if len(points) == 0:
            raise SpatialError(f"{self.model}: no points to write (lower --min-opacity?)")
        if len(points) > self.max_points:
            keep = torch.randperm(len(points), generator=torch.Generator().manual_seed(0))[: self.max_points]
            points, colors = points[keep], colors[keep]
        save_points(points.detach().cpu().numpy(), colors.detach().cpu().numpy(), out)
        Console().print(f"wrote {len(points):,} points to [bold]{out}[/]")
