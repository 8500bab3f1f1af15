"""`spatial process images|video`: a capture to a scene folder with calibrated cameras and sparse points."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro
from rich.console import Console
from rich.table import Table

from spatial.process.sfm import SfMConfig


@dataclass
class ProcessImages:
    """Reconstruct a folder of photos with COLMAP (pycolmap): writes images/, sparse/0, transforms.json."""

    folder: tyro.conf.Positional[Path]
    """Folder of photos (JPEG, PNG, ...). EXIF orientation is applied; files that are not images are skipped."""
    out: tyro.conf.Positional[Path]
    """Scene folder to write (created if missing; an earlier result there is replaced)."""
    max_size: int = 1600
    """Longest side of the imported images in pixels (0 keeps the originals' size)."""
    sfm: Annotated[SfMConfig, tyro.conf.arg(name="")] = field(default_factory=SfMConfig)
    """Structure-from-motion settings."""

    def main(self) -> None:
        from spatial.process.pipeline import process_images

        console = Console()
        with console.status("starting") as status:
            def stage(name: str) -> None:
                status.update(f"{name} ... (COLMAP's messages: {self.out / 'colmap.log'})")
                console.log(name)

            manifest = process_images(self.folder, self.out, self.sfm, self.max_size, stage)
        print_summary(console, manifest, self.out)


@dataclass
class ProcessVideo:
    """Choose sharp frames spread over a video, then reconstruct them like `process images`."""

    video: tyro.conf.Positional[Path]
    """Video file (MP4, MOV, ...), decoded with PyAV; rotation metadata is honoured."""
    out: tyro.conf.Positional[Path]
    """Scene folder to write (created if missing; an earlier result there is replaced)."""
    frames: int = 120
    """How many frames to keep, spread evenly over the video (fewer if the video is shorter)."""
    max_size: int = 1600
    """Longest side of the extracted frames in pixels (0 keeps the video's size)."""
    sfm: Annotated[SfMConfig, tyro.conf.arg(name="")] = field(default_factory=SfMConfig)
    """Structure-from-motion settings (matching is sequential for video under matcher=auto)."""

    def main(self) -> None:
        from rich.progress import Progress

        from spatial.process.pipeline import process_video

        console = Console()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("reading frames", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            def stage(name: str) -> None:
                progress.update(task, description=name)
                console.log(name)

            manifest = process_video(self.video, self.out, self.frames, self.sfm, self.max_size, stage, advance)
        source = manifest["source"]
        console.print(f"frames: {source['frames_read']} read, {source['frames_dropped_for_blur']} dropped for blur, "
                      f"{source['frames_kept']} kept" + (f" ({source['note']})" if "note" in source else ""))
        print_summary(console, manifest, self.out)


@dataclass
class ProcessImport:
    """Bring an existing reconstruction (COLMAP model or transforms.json) into a spatial scene folder."""

    source: tyro.conf.Positional[Path]
    """A COLMAP scene folder (images/ + sparse/0), a transforms.json, or a Blender-layout folder."""
    out: tyro.conf.Positional[Path]
    """Scene folder to write: images/, images_2/4/8, sparse/0, transforms.json and manifest.json."""

    def main(self) -> None:
        from spatial.cli.scene import copy_images, print_notes
        from spatial.files import write_json_atomic
        from spatial.io import load_scene, write_colmap, write_transforms

        scene = copy_images(load_scene(self.source), self.out / "images")
        console = Console()
        print_notes(console, scene, colmap=True)
        write_colmap(scene, self.out / "sparse" / "0")
        write_transforms(scene, self.out / "transforms.json")
        scene.cache_downscaled()
        manifest = {"source": {"imported": str(self.source.resolve()), "layout": scene.source_format},
                    "images": {"registered": len(scene)}, "points": int(scene.points.shape[0]),
                    "camera_model": scene.cameras.model.value}
        write_json_atomic(self.out / "manifest.json", manifest)
        console.print(f"imported {len(scene)} cameras and {scene.points.shape[0]:,} points into [bold]{self.out}[/]")


def print_summary(console: Console, manifest: dict, out: Path) -> None:
    table = Table(title=f"scene {out}", show_header=False)
    images = manifest["images"]
    table.add_row("registered", f"{images['registered']} of {images['imported']} imported ({images['input']} files)")
    table.add_row("sparse points", f"{manifest['points']:,}")
    table.add_row("reprojection error", f"{manifest['mean_reprojection_error_px']:.3f} px")
    table.add_row("models", str(manifest["models"]) + (" (kept the largest)" if manifest["models"] > 1 else ""))
    table.add_row("mapper", manifest["mapper"])
    for stage, seconds in manifest["seconds"].items():
        table.add_row(f"time: {stage}", f"{seconds:.1f} s")
    console.print(table)
    for name, why in manifest["skipped"].items():
        console.print(f"[yellow]skipped[/] {name}: {why}")
    for name, why in manifest["unregistered"].items():
        console.print(f"[yellow]not registered[/] {name}: {why}")
    for note in manifest["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"train on it with: [bold]spatial train splat {out}[/]")
