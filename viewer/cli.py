"""`spatial view`: open runs, splat files, meshes and point clouds in the browser viewer."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import tyro
from rich.console import Console

from spatial.errors import SpatialError


@dataclass
class View:
    """Open models in the browser viewer: fly around, edit (select, delete, crop, move, merge), plan camera paths."""

    inputs: tyro.conf.Positional[list[Path]]
    """Training run folders, checkpoints (.pt), splat files (.ply, .splat, .spz), world files (.world.json),
    meshes (.ply, .obj, .glb) or point clouds (.ply); each becomes a layer of one world."""
    host: str = "127.0.0.1"
    """Address to serve on. The default is reachable from this machine only; 0.0.0.0 opens it to the network."""
    port: int = 8080
    """Port to serve on; refused with a message when another program holds it."""
    out: Path = Path("edited.ply")
    """Where 'Save PLY' writes the edited world ('Save world' and 'Save path' write beside it)."""
    thumbnails: bool = True
    """Show each training camera's image on its frustum (reads the images once at start)."""

    def main(self) -> None:
        console = Console()
        if not self.inputs:
            raise SpatialError("nothing to view: give a training run folder, a splat file, a mesh or a point cloud")
        check_port(self.host, self.port)
        if not is_loopback(self.host):
            console.print(f"[yellow]warning:[/] serving on {self.host}: anyone who can reach this machine can "
                          "view and edit the world (and save over --out)")
        app = build_app(self.inputs, self.out, self.thumbnails)
        app.start(self.host, self.port)
        console.print(f"viewer running at [bold]{app.url}[/]  (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            console.print("stopped")
        finally:
            app.stop()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            raise SpatialError(f"port {port} on {host} is in use (another viewer or program); "
                               "choose another with --port") from None


def build_app(inputs: list[Path], out: Path, thumbnails: bool = True):
    import numpy as np
    from PIL import Image

    from spatial.camera_path import scene_frame
    from viewer.app import ViewerApp
    from viewer.layers import StaticLayer, open_input
    from viewer.world import World

    world, static, cameras, images, background = World(), [], None, None, (0.0, 0.0, 0.0)
    for path in inputs:
        if path.name.endswith(".world.json"):
            for layer in World.load_world(path).layers:
                world.add_layer(layer.name, layer.params, layer.source, layer.transform)
            continue
        opened = open_input(path)
        if isinstance(opened, StaticLayer):
            static.append(opened)
            continue
        world.add_layer(path.name if path.is_dir() else path.stem, opened.params, str(path))
        if cameras is None and opened.scene_path is not None and Path(opened.scene_path).exists():
            scene = opened.scene()
            cameras, background = scene.cameras, opened.background
            if thumbnails:
                images = []
                for i in range(len(scene)):
                    rgb = (scene.load_image(i) * 255).astype(np.uint8)
                    h, w = rgb.shape[:2]
                    images.append(np.asarray(Image.fromarray(rgb).resize((96, max(1, round(96 * h / w))))))
    world._undo.clear()  # opening is not an edit
    up = None if cameras is None else scene_frame(cameras)[1].numpy()
    return ViewerApp(world, static, cameras, images, out, background, up)
