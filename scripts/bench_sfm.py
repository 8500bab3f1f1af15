"""Benchmark structure from motion: time per stage, registration, reprojection error, pose accuracy.

    python scripts/bench_sfm.py                           # the built-in synthetic scenes (pose errors vs truth)
    python scripts/bench_sfm.py ../shared/data/monstree/images ../shared/data/sceaux_castle/images

For synthetic scenes the true cameras are held back from the reconstruction and compared after a
similarity alignment: camera-centre error as a fraction of the cameras' extent, rotation error in degrees.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_photos(name: str, folder: Path):
    from spatial import load_scene
    from spatial.scenes import make_scene
    from spatial.scenes.config import SceneSize

    scene = load_scene(make_scene(name, SceneSize(width=384, height=288, views=32, supersample=2, points=500)))
    folder.mkdir(parents=True)
    for i in range(len(scene)):
        Image.fromarray((scene.load_image(i) * 255 + 0.5).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return scene


def report(label: str, manifest: dict, errors: dict | None) -> None:
    s = manifest["seconds"]
    line = (f"{label:28} registered {manifest['images']['registered']:>3}/{manifest['images']['imported']:<3} "
            f"reproj {manifest['mean_reprojection_error_px']:.3f} px  extract {s['extraction']:6.1f} s  "
            f"match {s['matching']:6.1f} s  map {s['mapping']:6.1f} s  total {s['total']:6.1f} s")
    if errors:
        line += (f"  centre err {100 * errors['center_error_max']:.2f}% max / {100 * errors['center_error_mean']:.2f}% "
                 f"mean  rot err {errors['rotation_error_max_deg']:.2f} deg max")
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("captures", nargs="*", type=Path, help="folders of photos (default: the synthetic scenes)")
    args = parser.parse_args()

    from spatial import load_scene
    from spatial.process.alignment import pose_errors
    from spatial.process.pipeline import process_images

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.captures:
            for folder in args.captures:
                report(folder.parent.name, process_images(folder, tmp / folder.parent.name), None)
            return
        for name in ("facade", "orbit"):
            truth = synthetic_photos(name, tmp / f"{name}-photos")
            manifest = process_images(tmp / f"{name}-photos", tmp / name)
            est = load_scene(tmp / name)
            ids = [int(Path(n).stem) for n in est.image_names]
            report(f"{name} (synthetic, 384x288)", manifest, pose_errors(est.cameras.cam_to_world,
                                                                           truth.cameras.cam_to_world[ids]))


if __name__ == "__main__":
    main()
