"""Scene files: detect the layout of a folder and load it into a `Scene`, or write one out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from spatial.errors import file_error
from spatial.io.blender import load_blender
from spatial.io.colmap import find_model, load_colmap, write_colmap
from spatial.io.exposures import read_exposures
from spatial.io.nerfstudio import load_transforms, write_transforms
from spatial.scene import Scene

__all__ = ["detect_format", "load_scene", "load_blender", "load_colmap", "load_transforms", "write_colmap",
           "write_transforms"]


def detect_format(path: Path) -> str:
    """'blender', 'nerfstudio' or 'colmap' for a scene folder (or a transforms file)."""
    path = Path(path)
    if not path.exists():
        raise file_error(path, "no such file or folder")
    if path.is_file():
        if path.suffix == ".json":
            return "nerfstudio"
        raise file_error(path, "not a scene: pass a scene folder or a transforms.json file")
    if (path / "transforms_train.json").is_file():
        return "blender"
    if (path / "transforms.json").is_file():
        return "nerfstudio"
    if find_model(path) is not None:
        return "colmap"
    from spatial.images import IMAGE_EXTENSIONS

    if any(p.suffix in IMAGE_EXTENSIONS for p in path.iterdir() if p.is_file()):
        raise file_error(path, "holds images but no camera poses; make a scene from them first: "
                               f"spatial process images {path} OUT/")
    raise file_error(
        path, "no scene found: expected transforms.json, transforms_train.json or a COLMAP model in sparse/0"
    )


def load_scene(path: str | Path, test_every: int = 8, check_images: bool = True) -> Scene:
    """Load any supported scene layout.

    `test_every` holds out every n-th image for evaluation where the files name no split.
    `check_images` reads every image header so a missing or mis-sized image is reported now,
    by name, rather than in the middle of training.
    """
    path = Path(path).resolve()
    fmt = detect_format(path)
    if fmt == "blender":
        scene = load_blender(path)
    elif fmt == "nerfstudio":
        scene = load_transforms(path, test_every)
    else:
        scene = load_colmap(path, test_every=test_every)
    if check_images:
        scene.check_images()
    exposures, why_not = read_exposures(scene.root, scene.image_names)
    if why_not:
        scene.notes.append(why_not)
    return replace(scene, exposures=exposures)
