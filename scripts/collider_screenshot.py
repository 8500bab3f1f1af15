"""Pictures of a world's collider beside its splats, as the viewer shows them (the Walk panel's collider).

    python scripts/collider_screenshot.py RUN scripts/results/collider_monstree.png [--view K]

Opens `spatial view`'s app on RUN, makes the collider as its Make collider button does, and takes three screenshots
in headless Chromium from outside the training cameras' ring, looking down at what they look at (or from training
view K): the splats alone, the collider alone (opaque, flat-shaded), and the two together (the collider green and
40% opaque, as the Walk panel shows it). They are saved side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_viewer_lod import FLAGS, free_port  # noqa: E402 - Chromium's flags and a free port, as the LOD bench


def settled(page, clip, seconds: float = 60.0):
    """A screenshot once two in a row, a second apart, agree (software WebGL draws slowly)."""
    import numpy as np
    from PIL import Image

    last, start = None, time.time()
    while time.time() - start < seconds:
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")).astype(int)
        if last is not None and np.abs(shot - last).mean() < 0.5 and shot.std() > 5:
            return shot
        last = shot
        time.sleep(1.0)
    return last


@contextlib.contextmanager
def viewer_in_browser(run: Path, viewport: dict):
    """`spatial view`'s app on `run`, served and open in headless Chromium: yields (app, page, client) once the
    browser has connected; stops both after."""
    from playwright.sync_api import sync_playwright

    from spatial_viewer.cli import build_app

    app = build_app([run], Path(tempfile.mkdtemp()) / "edited.ply")
    app.start("127.0.0.1", free_port())
    profile = tempfile.mkdtemp()
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True,
                args=FLAGS, viewport=viewport)
            page = context.new_page()
            page.goto(app.url)
            while not app.server.get_clients():
                time.sleep(0.2)
            yield app, page, next(iter(app.server.get_clients().values()))
            context.close()
    finally:
        app.stop()
        shutil.rmtree(profile, ignore_errors=True)


def look_from(client, cameras, k: int) -> None:
    """Put the browser's camera where training camera `k` of `cameras` is, with its field of view."""
    from spatial.transforms import rotmat_to_quat

    c2w = cameras.cam_to_world[k]
    with client.atomic():
        client.camera.fov = float(cameras.fov_y[k])
        client.camera.wxyz = rotmat_to_quat(c2w[:3, :3]).numpy()
        client.camera.position = c2w[:3, 3].numpy()


def save_side_by_side(shots: list, out: Path) -> None:
    """Screenshots `[H, W, 3]` of one height, 10 white pixels apart, into one picture at `out`."""
    import numpy as np
    from PIL import Image

    gap = np.full((shots[0].shape[0], 10, 3), 255)
    parts = [part for shot in shots for part in (gap, shot)][1:]
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(parts, 1).astype(np.uint8)).save(out)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--view", type=int, default=None, help="a training view to look from (default: from "
                        "--distance times the cameras' distance from what they look at, --elevation degrees up)")
    parser.add_argument("--distance", type=float, default=2.2)
    parser.add_argument("--elevation", type=float, default=30.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from spatial.camera_path import scene_frame
    from spatial_viewer.panels.walk import COLLIDER_RGB

    with viewer_in_browser(args.run, {"width": 1000, "height": 700}) as (app, page, client):
        collider = app.walk.make()
        print(f"collider: {len(collider.mesh.faces):,} triangles, voxels of {collider.voxel_size:.4g}")
        clip = {"x": 0, "y": 160, "width": 650, "height": 540}  # left of the panel, below the notices
        app.show_cameras(False)
        settled(page, clip)  # the viewer's first view, which the app sets when the browser connects, drawn
        if args.view is not None:
            look_from(client, app.cameras, args.view)
        else:
            center, up, radius, height = (np.asarray(v, float) for v in scene_frame(app.cameras))
            away = app.cameras.centers[0].double().numpy() - center
            away -= (away @ up) * up  # the first camera's direction from the centre, level
            away /= np.linalg.norm(away)
            reach = args.distance * float(np.hypot(radius, height))
            angle = np.radians(args.elevation)
            with client.atomic():
                client.camera.up_direction = up
                client.camera.position = center + reach * (np.cos(angle) * away + np.sin(angle) * up)
                client.camera.look_at = center
        splats = settled(page, clip)
        for handle in app._layer_handles.values():
            handle.visible = False
        mesh = collider.mesh
        app.server.scene.add_mesh_simple("/collider", mesh.vertices, mesh.faces.astype(np.uint32),
                                         color=COLLIDER_RGB, flat_shading=True)
        alone = settled(page, clip)
        for handle in app._layer_handles.values():
            handle.visible = True
        app.walk.show.value = True
        app.walk._draw()  # as the Walk panel draws it
        both = settled(page, clip)
    save_side_by_side([splats, alone, both], args.out)


if __name__ == "__main__":
    main()
