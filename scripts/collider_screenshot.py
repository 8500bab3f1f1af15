"""Pictures of a world's collider beside its splats, as the viewer shows them (the Walk panel's collider).

    python scripts/collider_screenshot.py RUN scripts/results/collider_monstree.png [--view K]

Opens `spatial view`'s app on RUN, makes the collider as its Make collider button does, and takes three screenshots
in headless Chromium from outside the training cameras' ring, looking down at what they look at (or from training
view K): the splats alone, the collider alone (opaque, flat-shaded), and the two together (the collider green and
40% opaque, as the Walk panel shows it). They are saved side by side.
"""

from __future__ import annotations

import argparse
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
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from spatial.camera_path import scene_frame
    from spatial.transforms import rotmat_to_quat
    from spatial_viewer.cli import build_app
    from spatial_viewer.panels.walk import COLLIDER_RGB

    app = build_app([args.run], Path(tempfile.mkdtemp()) / "edited.ply")
    app.start("127.0.0.1", free_port())
    profile = tempfile.mkdtemp()
    try:
        collider = app.walk.make()
        print(f"collider: {len(collider.mesh.faces):,} triangles, voxels of {collider.voxel_size:.4g}")
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True,
                args=FLAGS, viewport={"width": 1000, "height": 700})
            page = context.new_page()
            page.goto(app.url)
            while not app.server.get_clients():
                time.sleep(0.2)
            client = next(iter(app.server.get_clients().values()))
            clip = {"x": 0, "y": 160, "width": 650, "height": 540}  # left of the panel, below the notices
            app.show_cameras(False)
            settled(page, clip)  # the viewer's first view, which the app sets when the browser connects, drawn
            if args.view is not None:
                c2w = app.cameras.cam_to_world[args.view]
                with client.atomic():
                    client.camera.fov = float(app.cameras.fov_y[args.view])
                    client.camera.wxyz = rotmat_to_quat(c2w[:3, :3]).numpy()
                    client.camera.position = c2w[:3, 3].numpy()
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
            context.close()
    finally:
        app.stop()
        shutil.rmtree(profile, ignore_errors=True)
    gap = np.full((splats.shape[0], 10, 3), 255)
    picture = np.concatenate([splats, gap, alone, gap, both], 1).astype(np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
