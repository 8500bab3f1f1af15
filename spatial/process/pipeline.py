"""`process_images`: a folder of photos to a scene folder that COLMAP, nerfstudio and spatial read.

    OUT/images/            undistorted images (registered ones only)
    OUT/images_2, _4, _8/  downscaled copies
    OUT/sparse/0/          the COLMAP model (PINHOLE after undistortion)
    OUT/transforms.json    the same cameras for nerfstudio
    OUT/manifest.json      what was done: source, counts, reprojection error, timings
    OUT/colmap.log         COLMAP's own messages
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from spatial.errors import SpatialError
from spatial.process.photos import import_photos
from spatial.process.sfm import SfMConfig, SfMResult, run_sfm


def process_images(folder: Path, out: Path, config: SfMConfig | None = None, max_size: int = 0,
                   stage=None, source: dict | None = None, is_video: bool = False) -> dict:
    """Reconstruct the photos in `folder` into the scene folder `out`; returns the manifest."""
    config = config or SfMConfig()
    stage = stage or (lambda name: None)
    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    stage("importing photos")
    imported = import_photos(folder, out / "input", max_size=max_size)
    result = run_sfm(out / "input", imported.names, out, config, is_video, imported.focal_px, imported.size, stage)
    if len(result.registered) < 3:
        raise SpatialError(f"{folder}: only {len(result.registered)} of {len(imported.names)} photos could be placed; "
                           "the photos do not overlap enough")
    stage("writing the scene")
    manifest = write_scene(out, folder, imported.names, imported.skipped, result, config, source)
    manifest["seconds"]["total"] = round(time.time() - start, 2)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def write_scene(out: Path, folder: Path, names: list[str], skipped: dict, result: SfMResult, config: SfMConfig,
                source: dict | None) -> dict:
    from spatial.io import load_colmap, write_transforms

    scene = load_colmap(out)
    write_transforms(scene, out / "transforms.json")
    for factor in (2, 4, 8):
        scene.downscaled(factor)
    shutil.rmtree(out / "colmap", ignore_errors=True)
    return {
        "source": source or {"photos": str(folder.resolve())},
        "images": {"input": len(names) + len(skipped), "imported": len(names), "registered": len(result.registered)},
        "skipped": skipped,
        "unregistered": result.unregistered,
        "models": result.models,
        "points": result.points,
        "mean_reprojection_error_px": round(result.reprojection_error, 4),
        "camera_model": "PINHOLE (undistorted)" if config.undistort else config.camera_model,
        "config": asdict(config),
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
    }
