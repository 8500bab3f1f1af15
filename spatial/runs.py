"""Trained models from files: a training run, a checkpoint or a splat file, ready to render.

    model = load_model("outputs/demo")          # a run folder, a step-*.pt checkpoint, or any splat file
    out = model.render(cameras)                 # RenderOutput: rgb, alpha, depth  [C, H, W, ...]
    for frame in model.render_frames(cameras):  # one camera at a time, for long paths
        ...

What a run folder holds is spatial/run_folder.py's; which method a checkpoint belongs to and how it
becomes a model is spatial/methods.py's; splat files are read through spatial/formats. The scene is
needed only for what uses the training cameras (mesh export, default render paths).
"""

from __future__ import annotations

from pathlib import Path

from spatial.errors import SpatialError, file_error
from spatial.splats.trained import SplatModel
from spatial.trained import TrainedModel

__all__ = ["SplatModel", "TrainedModel", "load_model", "load_splat_model"]


def load_model(path: Path, device: str = "cpu") -> TrainedModel:
    """A trained model from a run folder, a checkpoint, or a splat file (any suffix spatial.formats reads):
    a `SplatModel`, a `TrainedNerf` (spatial.nerf.trained), or whatever the run's method loads; each renders
    through `render` / `render_frames`. `device`: where its tensors go (`auto`: cuda when available, else cpu)."""
    from spatial import run_folder
    from spatial.checkpoint import read_checkpoint
    from spatial.formats import load_splats, splat_ending, splat_suffixes
    from spatial.methods import method_of_checkpoint
    from spatial.trainer import pick_device

    device = pick_device(device)
    path = Path(path)
    kinds = f"a training run folder, a checkpoint (.pt) or a splat file ({', '.join(splat_suffixes())})"
    if not path.exists():
        raise file_error(path, f"not found; expected {kinds}")
    if path.is_dir():
        checkpoint = run_folder.latest_checkpoint(path)
        if checkpoint is None:
            hint = " (it has a splats.ply: pass that file)" if (path / "splats.ply").is_file() else ""
            raise file_error(path, "has no checkpoint (checkpoints/step-*.pt); it is not a finished or "
                                   f"interrupted training run{hint}")
        path = checkpoint
    if path.suffix == ".pt":
        payload = read_checkpoint(path)
        model = method_of_checkpoint(path, payload).load(path, payload, device)
        info = run_folder.read_run_info(run_folder.run_of(path))
        if info is not None:
            model.scene_path, model.downscale = info.scene, info.downscale
            model.background = info.background or _scene_background(info.scene)
        return model
    if splat_ending(path) is not None:
        return SplatModel({k: v.to(device) for k, v in load_splats(path).items()}, path)
    raise file_error(path, f"unknown model file type {path.suffix!r}; expected {kinds}")


def load_splat_model(path: Path, device: str = "cpu") -> SplatModel:
    """`load_model`, for what only splats have (splat files, centres as points): a NeRF is refused clearly."""
    model = load_model(path, device)
    if not isinstance(model, SplatModel):
        raise SpatialError(f"{path}: is a NeRF run, which has no Gaussians to write; export a mesh "
                           "(`spatial export mesh` or `density-mesh`) or depth points (`--source depth`)")
    return model


def _scene_background(scene_path: Path | None) -> tuple[float, float, float]:
    """For runs whose config.json predates its `background`: the scene's, read from the scene folder."""
    from spatial.scene import DEFAULT_BACKGROUND

    if scene_path is None or not Path(scene_path).exists():
        return DEFAULT_BACKGROUND
    try:
        from spatial.io import load_scene

        return load_scene(Path(scene_path)).background_rgb
    except SpatialError:
        return DEFAULT_BACKGROUND
