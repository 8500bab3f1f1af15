"""`spatial view`: open runs, splat files, meshes and point clouds in the browser viewer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro
from rich.console import Console

from spatial.errors import SpatialError
from spatial.ports import check_port, is_loopback


@dataclass
class View:
    """Open models in the browser viewer: fly around; select on screen or by region, delete, crop, grade colour,
    measure and scale, level the ground; manage layers (hide, lock, split, merge); plan camera paths."""

    inputs: tyro.conf.Positional[list[Path]]
    """Training run folders, checkpoints (.pt), splat files (any format `spatial export` writes), world files
    (.world.json), meshes (.ply, .obj, .glb, ...) or point clouds (.ply); each becomes a layer of one world."""
    host: str = "127.0.0.1"
    """Address to serve on. The default is reachable from this machine only; 0.0.0.0 opens it to the network."""
    port: int = 8080
    """Port to serve on; refused with a message when another program holds it."""
    out: Path = Path("edited.ply")
    """Where 'Save splats' writes the edited world, in the format its suffix names ('Save world' and 'Save
    path' write beside it)."""
    thumbnails: bool = True
    """Show each training camera's image on its frustum (reads the images once at start)."""
    splat_budget: int = 1_000_000
    """Most Gaussians sent to the browser, all layers together: near the camera in full, farther away fewer
    (level of detail; also in the viewer's panel). A laptop's GPU draws a million; a browser drawing without
    a GPU (software WebGL) wants about 50,000."""
    input_spz_axes: Literal["rub", "rdf"] = "rub"
    """Axes of SPZ inputs, which the files do not say: rub (Niantic's, the format's own) or rdf (as
    splat-transform and SuperSplat write SPZ; without rdf their files open upside down)."""

    def main(self) -> None:
        console = Console()
        if not self.inputs:
            raise SpatialError("nothing to view: give a training run folder, a splat file, a mesh or a point cloud")
        check_port(self.host, self.port)
        if not is_loopback(self.host):
            console.print(f"[yellow]warning:[/] serving on {self.host}: anyone who can reach this machine can "
                          "view and edit the world (and save over --out)")
        if self.splat_budget < 1:
            raise SpatialError(f"--splat-budget must be at least 1 (given {self.splat_budget})")
        app = build_app(self.inputs, self.out, self.thumbnails, self.input_spz_axes, self.splat_budget)
        app.start(self.host, self.port)
        console.print(f"viewer running at [bold]{app.url}[/]  (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            console.print("stopped")
        finally:
            app.stop()


def build_app(inputs: list[Path], out: Path, thumbnails: bool = True, spz_axes: str = "rub",
              splat_budget: int | None = None):
    from spatial.camera_path import scene_frame
    from spatial.trained import FILE_BACKGROUND, SplatModel
    from spatial_viewer.app import ViewerApp
    from spatial_viewer.layers import StaticLayer, camera_thumbnails, open_input
    from spatial_viewer.lod import LodConfig
    from spatial_viewer.world import World

    world, static, cameras, images, background = World(), [], None, None, FILE_BACKGROUND
    server_model = None  # a NeRF: drawn by server-side renders only
    for path in inputs:
        if path.name.endswith(".world.json"):
            for layer in World.load_world(path).layers:
                world.add_layer(layer.name, layer.params, layer.source, layer.transform)
            continue
        opened = open_input(path, spz_axes)
        if isinstance(opened, StaticLayer):
            static.append(opened)
            continue
        if isinstance(opened, SplatModel):
            world.add_layer(layer_name(path), opened.params, str(path))
        elif server_model is not None:
            raise SpatialError(f"{path}: the viewer shows one NeRF at a time (splat layers can be several)")
        else:
            server_model = opened
        if cameras is None and opened.scene_path is not None and Path(opened.scene_path).exists():
            scene = opened.scene()
            cameras, background = scene.cameras, opened.background
            images = camera_thumbnails(scene) if thumbnails else None
    world.forget_history()  # opening is not an edit
    up = None if cameras is None else scene_frame(cameras)[1].numpy()
    app = ViewerApp(world, static, cameras, images, out, background, up, editable=server_model is None,
                    lod=LodConfig() if splat_budget is None else LodConfig(budget=splat_budget))
    if server_model is not None:
        app.set_model(server_model)
    return app


def layer_name(path: Path) -> str:
    """A layer's name from its input: a run folder's name, a file's name without its format's ending
    (`scene.compressed.ply` -> scene), an unbundled SOG's folder name (`scene/meta.json` -> scene)."""
    from spatial.formats import splat_ending

    if path.is_dir():
        return path.name
    ending = splat_ending(path) or path.suffix
    name = path.name[: len(path.name) - len(ending)] if path.name.lower().endswith(ending) else path.stem
    return name.rstrip(".") or path.parent.name or path.stem
