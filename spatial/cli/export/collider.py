"""`spatial export collider`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tyro
from rich.console import Console

from spatial.cli.export.paths import output_path
from spatial.mesh.collider import ColliderConfig
from spatial.progress import progress_bar


@dataclass
class ExportCollider:
    """A closed collision mesh (GLB) for game engines and walk-through viewers: what is solid in the world, holes in
    walls and floors closed, floaters dropped, under a triangle budget (see spatial/mesh/collider.py)."""

    model: tyro.conf.Positional[Path]
    """Training run folder or checkpoint (its scene gives the cameras), or a splat file with --scene."""
    out: Path | None = None
    """Output .glb (default: exports/collider.glb inside the run folder)."""
    scene: Path | None = None
    """Scene folder whose cameras to render from (default: the one the run was trained on)."""
    collider: tyro.conf.OmitArgPrefixes[ColliderConfig] = field(default_factory=ColliderConfig)
    """How the world's renders become a solid and its surface."""
    level: bool = False
    """Turn the collider so the scene's up (the training cameras' mean up) is glTF's +Y, gravity straight down.
    By default it is in the frame `spatial export glb` writes the splats in (our axes turned 180 degrees about
    z), so the two line up; the scene's up in that frame is printed and stored in the file's extras."""
    device: str = "auto"
    """Torch device to render on: auto, cpu, cuda or cuda:N (auto: cuda when there is a GPU)."""

    def main(self) -> None:
        import math

        import numpy as np

        from spatial.camera_path import scene_frame
        from spatial.errors import SpatialError
        from spatial.formats.glb import TURN
        from spatial.mesh.collider import grid_turnable, make_collider, save_collider
        from spatial.mesh.fusion import rendered_views
        from spatial.trained import load_model

        out = output_path(self.model, self.out, "collider.glb", ".glb")
        config = self.collider
        if config.max_triangles < 12:
            raise SpatialError(f"--max-triangles must be at least 12 (a box), got {config.max_triangles}")
        if config.voxels is not None and not (math.isfinite(config.voxels) and config.voxels > 0):
            raise SpatialError(f"--voxels must be a size above 0 in scene units, got {config.voxels}")
        model = load_model(self.model, self.device)
        if self.scene is not None:
            model.scene_path = self.scene
        scene = model.scene()
        cameras = scene.cameras
        up = scene_frame(cameras)[1].double().numpy()  # [3] in our axes
        turn = TURN.double().numpy()[:3, :3]
        if self.level:
            turn = _levelling(turn @ up) @ turn
        if config.voxels is not None and not grid_turnable(turn):
            raise SpatialError("--voxels writes a voxel grid, which --level would turn by other than quarter turns "
                               f"(the scene's up is {np.round(turn @ up, 3).tolist()}); leave out one of them")
        with progress_bar("render", len(cameras)) as advance:
            views = rendered_views(model.render_frames(cameras), advance, len(cameras))
        collider = make_collider(views, cameras, config, scene.points)
        save_collider(collider, out, turn, binvox=config.voxels is not None)
        up_out = turn @ up
        tilt = math.degrees(math.acos(max(-1.0, min(1.0, float(up_out[1])))))
        console = Console()
        console.print(f"wrote a collider of {len(collider.mesh.faces):,} triangles (voxels of "
                      f"{collider.voxel_size:.4g} scene units) to [bold]{out}[/]", highlight=False)
        console.print(f"the scene's up (the cameras' mean) is {np.round(up_out, 3).tolist()} in the file, "
                      f"{tilt:.1f} degrees from +Y" + ("" if self.level else "; --level turns it to +Y"),
                      highlight=False)
        if config.voxels is not None:
            console.print(f"and the solid as a {' x '.join(map(str, collider.solid.shape))} voxel grid to "
                          f"[bold]{out.with_suffix('.binvox')}[/]", highlight=False)


def _levelling(up):
    """`[3, 3]` the smallest rotation taking the unit vector `up` to +Y."""
    import numpy as np

    up = up / np.linalg.norm(up)
    y = np.array([0.0, 1.0, 0.0])
    axis, cos = np.cross(up, y), float(up @ y)
    if np.linalg.norm(axis) < 1e-9:
        return np.eye(3) if cos > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + k + k @ k / (1 + cos)
