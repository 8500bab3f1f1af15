"""`spatial scene ...`: inspect, convert and make scene folders."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro
from rich.console import Console
from rich.table import Table

from spatial.errors import SpatialError
from spatial.io import SCENE_LAYOUTS, writable_layouts
from spatial.io.exposures import FILE as EXPOSURES
from spatial.scene import Scene


def summary_table(scene: Scene, title: str) -> Table:
    cams = scene.cameras
    widths, heights = sorted(set(cams.width.tolist())), sorted(set(cams.height.tolist()))
    size = f"{widths[0]}x{heights[0]}" if len(widths) == len(heights) == 1 else "mixed: " + ", ".join(
        f"{w}x{h}" for w, h in sorted(set(zip(cams.width.tolist(), cams.height.tolist())))[:4])
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("folder", str(scene.root)),
        ("layout", scene.source_format or "-"),
        ("images", f"{len(scene)} ({len(scene.train_ids)} train, {len(scene.test_ids)} test)"),
        ("camera model", cams.model.value),
        ("image size", size),
        ("focal length", f"{float(cams.fx.min()):.1f} - {float(cams.fx.max()):.1f} px"),
        ("sparse points", f"{scene.points.shape[0]:,}"),
        ("camera extent", f"{scene.extent:.3f} (radius of the camera centres)"),
        ("background", str(scene.background) if scene.background else "white (behind images with alpha)"),
        ("exposures", "recorded for every photo (exposures.json)" if scene.exposures is not None else "not recorded"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


@dataclass
class Info:
    """Load a scene folder and print what it holds: cameras, images, split, points."""

    path: tyro.conf.Positional[Path]
    """Scene folder (COLMAP, nerfstudio or Blender layout) or a transforms.json file."""

    def main(self) -> None:
        from spatial.io import load_scene

        scene = load_scene(self.path)
        console = Console()
        console.print(summary_table(scene, f"scene {self.path}"))
        print_notes(console, scene)


LAYOUTS_HELP = "The layout to write, with images/ beside it: " + "; ".join(
    f"{name}: {SCENE_LAYOUTS[name].summary}" for name in writable_layouts()) + "."


@dataclass
class Convert:
    """Write a scene in another layout, with its images (and their images_2/4/8 copies) beside it, for other
    tools to read."""

    path: tyro.conf.Positional[Path]
    """Scene folder or transforms.json to read."""
    out: tyro.conf.Positional[Path]
    """Folder to write (created if missing)."""
    to: Annotated[Literal[writable_layouts()], tyro.conf.arg(help=LAYOUTS_HELP)] = "colmap"

    def main(self) -> None:
        from spatial.io import load_scene, write_scene

        scene = load_scene(self.path)
        exposures = scene.root / EXPOSURES
        scene = copy_images(scene, self.out / "images")
        write_scene(scene, self.out, self.to)
        scene.cache_downscaled()  # images_2/4/8: what nerfstudio loads for large images, gsplat by default
        if scene.exposures is not None and exposures.resolve() != (self.out / EXPOSURES).resolve():
            try:
                shutil.copyfile(exposures, self.out / EXPOSURES)  # the images keep their names
            except OSError as e:
                raise SpatialError(f"{self.out / EXPOSURES}: cannot write ({e.strerror})") from None
        console = Console()
        print_notes(console, scene, colmap=self.to in ("colmap", "colmap-text"))
        console.print(f"wrote {len(scene)} cameras as {self.to} to [bold]{self.out}[/]")


def print_notes(console: Console, scene: Scene, colmap: bool = False) -> None:
    """What the scene's files hold that spatial does not use, and, for a COLMAP model written from it
    (`colmap`), whether the 3DGS reference code can load it."""
    from spatial.io.colmap import is_pinhole

    notes = list(scene.notes)
    cams = scene.cameras
    if colmap and not is_pinhole(cams.model, cams.dist.numpy()):  # any camera's distortion keeps the lens
        notes.append(f"the cameras keep their {cams.model.value} lens model: nerfstudio and gsplat read it, the 3DGS "
                     "reference code needs undistorted PINHOLE cameras (spatial process images writes those)")
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def copy_images(scene: Scene, folder: Path) -> Scene:
    """The scene with its images copied under `folder` (kept where they already are)."""
    from dataclasses import replace

    paths = []
    try:
        for source, name in zip(scene.image_paths, scene.image_names):
            target = folder / name
            if target.resolve() != source.resolve():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            paths.append(target)
    except OSError as e:
        raise SpatialError(f"{e.filename}: cannot copy the image ({e.strerror})") from None
    return replace(scene, image_paths=paths, image_root=folder, root=folder.parent, downscale=1, full_size_paths=None)


@dataclass
class Make:
    """Render one of the built-in synthetic scenes (cached) and print where it is."""

    name: tyro.conf.Positional[Literal["orbit", "facade"]] = "orbit"
    """orbit: objects on a ground square, cameras circling (Blender layout, RGBA);
    facade: forward-facing view of objects before a wall (COLMAP + transforms.json)."""
    size: Literal["test", "default", "large"] = "default"
    """Preset from scenes/config.py: test 64x48 (16 views), default 256x192 (48), large 640x480 (96)."""
    seed: int = 0
    """Seed for the sampled sparse points."""

    def main(self) -> None:
        path = make_with_progress(self.name, self.size, self.seed)
        print(path)


def make_with_progress(name: str, size: str, seed: int = 0) -> Path:
    from spatial.progress import progress_bar
    from spatial.scenes import make_scene

    with progress_bar(f"rendering {name} ({size})", total=1) as advance:
        return make_scene(name, size, seed=seed, progress=advance)
