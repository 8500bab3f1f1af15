"""`spatial export mesh`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tyro
from rich.console import Console

from spatial.cli.export.paths import output_path
from spatial.formats import MESH_WRITE_SUFFIXES
from spatial.mesh import FusionConfig
from spatial.progress import progress_bar


@dataclass
class ExportMesh:
    """Extract a vertex-coloured mesh: render depth from the training cameras, fuse it (TSDF), marching cubes."""

    model: tyro.conf.Positional[Path]
    """Training run folder or checkpoint (its scene gives the cameras), or a splat file with --scene."""
    out: Path | None = None
    """Output mesh: .ply, .obj or .glb (default: exports/mesh.ply inside the run folder)."""
    scene: Path | None = None
    """Scene folder whose cameras to render from (default: the one the run was trained on)."""
    fusion: FusionConfig = field(default_factory=FusionConfig)
    """How depth maps become a volume and a surface."""
    device: str = "auto"
    """Torch device to render on: auto, cpu, cuda or cuda:N (auto: cuda when there is a GPU)."""

    def main(self) -> None:
        from spatial.mesh import mesh_from_depth, save_mesh
        from spatial.trained import load_model

        out = output_path(self.model, self.out, "mesh.ply", *MESH_WRITE_SUFFIXES)
        model = load_model(self.model, self.device)
        if self.scene is not None:
            model.scene_path = self.scene
        cameras = model.training_cameras()
        with progress_bar("render and fuse", 2 * len(cameras)) as advance:
            mesh = mesh_from_depth(model.render_frames(cameras), cameras, self.fusion, advance)
        save_mesh(mesh, out)
        Console().print(f"wrote a mesh of {len(mesh.vertices):,} vertices and {len(mesh.faces):,} faces "
                        f"to [bold]{out}[/]")
