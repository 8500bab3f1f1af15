"""Example: export several training runs at once, into every splat format plus a mesh and a preview.

    python scripts/example_batch_export.py outputs/demo outputs/garden --out exports/

For each run, writes RUN_NAME/splats.{ply,splat,spz} (dropping nearly transparent Gaussians),
RUN_NAME/mesh.glb (TSDF fusion of depth rendered from the training cameras) and RUN_NAME/preview.png
(the first training view), then prints a table of file sizes. Uses only `spatial`'s public API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import tyro
from PIL import Image

import spatial


def export_run(run: Path, out: Path, min_opacity: float, mesh_resolution: int) -> dict[str, int]:
    model = spatial.load_model(run)
    keep = torch.sigmoid(model.params["opacities"]) >= min_opacity
    params = {k: v[keep] for k, v in model.params.items()}
    files = {}
    for suffix in (".ply", ".splat", ".spz"):
        spatial.save_splats(params, out / f"splats{suffix}")
        files[f"splats{suffix}"] = (out / f"splats{suffix}").stat().st_size
    cameras = model.training_cameras()
    mesh = spatial.mesh_from_depth(model.render_frames(cameras), cameras,
                                   spatial.FusionConfig(resolution=mesh_resolution))
    spatial.save_mesh(mesh, out / "mesh.glb")
    files["mesh.glb"] = (out / "mesh.glb").stat().st_size
    first = model.render(cameras[0]).rgb[0].clamp(0, 1).numpy()
    Image.fromarray((first * 255 + 0.5).astype(np.uint8)).save(out / "preview.png")
    files["preview.png"] = (out / "preview.png").stat().st_size
    return files


def main(runs: tyro.conf.Positional[list[Path]], out: Path = Path("exports"), min_opacity: float = 0.005,
         mesh_resolution: int = 256) -> None:
    """Export each of RUNS (training run folders) into OUT/RUN_NAME/.

    Args:
        runs: Training run folders written by `spatial train`.
        out: Folder to write into; one subfolder per run.
        min_opacity: Leave out Gaussians less opaque than this.
        mesh_resolution: Voxels along the longest side of each mesh's volume.
    """
    for run in runs:
        files = export_run(run, out / run.name, min_opacity, mesh_resolution)
        print(run.name)
        for name, size in files.items():
            print(f"  {name:<12} {size / 1e6:8.2f} MB")


if __name__ == "__main__":
    tyro.cli(main)
