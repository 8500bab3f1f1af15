"""`spatial export density-mesh`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tyro
from rich.console import Console

from spatial.cli.export.paths import output_path
from spatial.errors import SpatialError
from spatial.formats import MESH_WRITE_SUFFIXES
from spatial.nerf.mesh import DensityMeshConfig
from spatial.progress import progress_bar


@dataclass
class ExportDensityMesh:
    """Extract a vertex-coloured mesh from a NeRF run by marching cubes over its density (no cameras needed)."""

    model: tyro.conf.Positional[Path]
    """NeRF training run folder or checkpoint."""
    out: Path | None = None
    """Output mesh: .ply, .obj or .glb (default: exports/density_mesh.ply inside the run folder)."""
    mesh: DensityMeshConfig = field(default_factory=DensityMeshConfig)
    """Grid, surface threshold and region."""
    device: str = "auto"
    """Torch device to evaluate the field on: auto, cpu, cuda or cuda:N (auto: cuda when there is a GPU)."""

    def main(self) -> None:
        from spatial.mesh import save_mesh
        from spatial.nerf.mesh import density_mesh
        from spatial.nerf.trained import TrainedNerf
        from spatial.trained import load_model

        out = output_path(self.model, self.out, "density_mesh.ply", *MESH_WRITE_SUFFIXES)
        model = load_model(self.model, self.device)
        if not isinstance(model, TrainedNerf):
            raise SpatialError(f"{self.model}: density meshes need a NeRF run; for splats use `spatial export mesh`")
        with progress_bar("evaluate density", 1) as advance:
            mesh = density_mesh(model.model, self.mesh, on_progress=advance)
        save_mesh(mesh, out)
        Console().print(f"wrote a mesh of {len(mesh.vertices):,} vertices and {len(mesh.faces):,} faces "
                        f"to [bold]{out}[/]")
