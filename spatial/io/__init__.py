"""Scene folders, in one registry of layouts: detect a folder's layout and load it into a `Scene`, or write one.

    scene = load_scene("garden/")                          # whichever layout the folder is in
    write_scene(scene, "garden_ns/", "nerfstudio")         # its cameras and points (images are the caller's)

A layout is a module with `detect(path) -> bool`, `load(path, test_every) -> Scene` and, when it can be written,
a writer `(scene, folder)`. A new layout is a new file here plus one `SceneLayout` line in `SCENE_LAYOUTS`:
`load_scene`, `spatial scene info`, `spatial train` and `spatial scene convert --to` all take it from this table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from spatial.errors import SpatialError, file_error
from spatial.io.blender import load_blender
from spatial.io.colmap import load_colmap, write_colmap
from spatial.io.exposures import read_exposures
from spatial.io.nerfstudio import load_transforms, write_transforms
from spatial.scene import Scene

__all__ = ["SCENE_LAYOUTS", "SceneLayout", "detect_format", "load_scene", "load_blender", "load_colmap",
           "load_transforms", "write_colmap", "write_scene", "write_transforms"]


@dataclass(frozen=True)
class SceneLayout:
    name: str  # `--to NAME`; a loaded scene's `source_format`
    summary: str  # one line: what a folder in this layout holds
    module: str  # the module with detect(path) and load(path, test_every), and the writer when there is one
    detected: bool = True  # False for a variant that is written only (colmap-text reads back as colmap)
    writer: str | None = None  # the module's (scene, folder) -> None that writes the layout, if it can be written

    def detect(self, path: Path) -> bool:
        return self.detected and importlib.import_module(self.module).detect(path)

    def load(self, path: Path, test_every: int) -> Scene:
        return importlib.import_module(self.module).load(path, test_every)

    def write(self, scene: Scene, folder: Path) -> None:
        if self.writer is None:
            raise SpatialError(f"scenes cannot be written in the {self.name} layout; write one of "
                               f"{', '.join(writable_layouts())}")
        write: Callable[[Scene, Path], None] = getattr(importlib.import_module(self.module), self.writer)
        write(scene, Path(folder))


SCENE_LAYOUTS: dict[str, SceneLayout] = {layout.name: layout for layout in (  # detection tries them in this order
    SceneLayout("blender", "transforms_train.json and transforms_test.json (the NeRF synthetic scenes)",
                "spatial.io.blender"),
    SceneLayout("nerfstudio", "transforms.json (nerfstudio, instant-ngp; the file itself may be named)",
                "spatial.io.nerfstudio", writer="write"),
    SceneLayout("colmap", "a COLMAP model in sparse/0, binary (text models are read too)", "spatial.io.colmap",
                writer="write"),
    SceneLayout("colmap-text", "a COLMAP model in sparse/0, as text", "spatial.io.colmap", detected=False,
                writer="write_text"),
)}


def writable_layouts() -> tuple[str, ...]:
    return tuple(name for name, layout in SCENE_LAYOUTS.items() if layout.writer is not None)


def detect_format(path: Path) -> str:
    """The name of the layout a scene folder (or a transforms file) is in: 'blender', 'nerfstudio', 'colmap', ..."""
    path = Path(path)
    if not path.exists():
        raise file_error(path, "no such file or folder")
    for name, layout in SCENE_LAYOUTS.items():
        if layout.detect(path):
            return name
    if path.is_file():
        raise file_error(path, "not a scene: pass a scene folder or a transforms.json file")
    from spatial.images import IMAGE_EXTENSIONS

    if any(p.suffix in IMAGE_EXTENSIONS for p in path.iterdir() if p.is_file()):
        raise file_error(path, "holds images but no camera poses; make a scene from them first: "
                               f"spatial process images {path} OUT/")
    raise file_error(
        path, "no scene found: expected transforms.json, transforms_train.json or a COLMAP model in sparse/0"
    )


def load_scene(path: str | Path, test_every: int = 8, check_images: bool = True) -> Scene:
    """Load a scene folder in any registered layout.

    `test_every` holds out every n-th image for evaluation where the files name no split.
    `check_images` reads every image header so a missing or mis-sized image is reported now,
    by name, rather than in the middle of training.
    """
    path = Path(path).resolve()
    scene = SCENE_LAYOUTS[detect_format(path)].load(path, test_every)
    if check_images:
        scene.check_images()
    exposures, why_not = read_exposures(scene.root, scene.image_names)
    if why_not:
        scene.notes.append(why_not)
    return replace(scene, exposures=exposures)


def write_scene(scene: Scene, folder: Path, layout: str) -> None:
    """Write the scene's cameras and points into `folder` in a registered layout (its images are not copied)."""
    if layout not in SCENE_LAYOUTS:
        raise SpatialError(f"unknown scene layout {layout!r}; choose from {', '.join(SCENE_LAYOUTS)}")
    SCENE_LAYOUTS[layout].write(scene, Path(folder))
