"""`process_images` / `process_video`: a capture to a scene folder that COLMAP, nerfstudio and spatial read.

    OUT/images/            undistorted images (registered ones only)
    OUT/images_2, _4, _8/  downscaled copies
    OUT/sparse/0/          the COLMAP model (PINHOLE after undistortion)
    OUT/transforms.json    the same cameras for nerfstudio
    OUT/{train,val,test}_list.txt  the split, for nerfstudio's COLMAP reader (spatial/io/split_lists.py)
    OUT/exposures.json     each photo's exposure settings from its EXIF, when it has them (spatial/io/exposures.py)
    OUT/manifest.json      what was done: source, counts, reprojection error, timings
    OUT/colmap.log         COLMAP's own messages
"""

from __future__ import annotations

import functools
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from spatial.errors import SpatialError
from spatial.files import write_json_atomic
from spatial.process.photos import import_photos
from spatial.process.sfm import Capture, SfMConfig, SfMResult, check_config, for_capture, run_sfm
from spatial.process.video import extract_frames


def _no_leftovers(process):
    """A run that fails before structure from motion starts removes the folder it created (an empty or
    half-imported one helps nobody); once COLMAP has written its log, the folder stays for that log."""
    @functools.wraps(process)
    def run(source: Path, out: Path, *args, **kwargs) -> dict:
        existed = Path(out).exists()
        try:
            return process(source, out, *args, **kwargs)
        except (SpatialError, KeyboardInterrupt):
            if not existed and not (Path(out) / "colmap.log").exists():
                shutil.rmtree(out, ignore_errors=True)
            raise
    return run


@_no_leftovers
def process_images(folder: Path, out: Path, config: SfMConfig | None = None, max_size: int = 0,
                   stage=None) -> dict:
    """Reconstruct the photos in `folder` into the scene folder `out`; returns the manifest."""
    config = config or SfMConfig()
    check_config(config)
    stage = stage or (lambda name: None)
    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    stage("importing photos")
    imported = import_photos(folder, out / "input", max_size=max_size)
    capture = Capture(out / "input", imported.names, sequence=False, focal_px=imported.focal_px, size=imported.size)
    return _reconstruct(folder, out, capture, imported.skipped, config, {"photos": str(folder.resolve())}, start,
                        stage, imported.exposures)


@_no_leftovers
def process_video(video: Path, out: Path, frames: int = 120, config: SfMConfig | None = None, max_size: int = 0,
                  stage=None, progress=None) -> dict:
    """Choose sharp frames of `video`, then reconstruct them as `process_images` does."""
    config = config or SfMConfig()
    check_config(config)
    stage = stage or (lambda name: None)
    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "input", ignore_errors=True)
    stage("reading the video")
    extracted = extract_frames(video, out / "input", frames, max_size, progress)
    if len(extracted.names) < 3:
        raise SpatialError(f"{video}: only {len(extracted.names)} usable frames ({extracted.read} read, "
                           f"{len(extracted.blurred)} too blurred); at least 3 are needed")
    source = {"video": str(video.resolve()), "frames_read": extracted.read, "frames_requested": frames,
              "frames_kept": len(extracted.names), "frames_dropped_for_blur": len(extracted.blurred),
              "blurred_frames": extracted.blurred, "kept_frames": extracted.kept,
              "rotation_degrees": extracted.rotation}
    if extracted.read < frames:
        source["note"] = (f"the video has {extracted.read} frames, fewer than the {frames} requested: "
                          "kept every sharp one")
    with Image.open(out / "input" / extracted.names[0]) as im:
        size = im.size
    capture = Capture(out / "input", extracted.names, sequence=True, size=size)
    return _reconstruct(video, out, capture, {}, config, source, start, stage)


def _reconstruct(origin: Path, out: Path, capture: Capture, skipped: dict, config: SfMConfig, source: dict,
                 start: float, stage, exposures: dict[str, dict] | None = None) -> dict:
    """Structure from motion on `capture`, then the scene folder and its manifest; `origin` names the input."""
    config = for_capture(config, capture.sequence, len(capture.names))  # the manifest records what ran
    result = run_sfm(capture, out, config, stage)
    if len(result.registered) < 3:
        raise SpatialError(f"{origin}: only {len(result.registered)} of {len(capture.names)} images could be "
                           "placed; they do not overlap enough")
    stage("writing the scene")
    manifest = write_scene(out, capture.names, skipped, result, config, source, exposures or {})
    manifest["seconds"]["total"] = round(time.time() - start, 2)
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def write_scene(out: Path, names: list[str], skipped: dict, result: SfMResult, config: SfMConfig,
                source: dict, exposures: dict[str, dict]) -> dict:
    from spatial.io import load_colmap, write_transforms
    from spatial.io.exposures import FILE, write_exposures
    from spatial.io.split_lists import write_split_lists

    scene = load_colmap(out)
    write_transforms(scene, out / "transforms.json")
    write_split_lists(out, scene.image_names, scene.train_ids, scene.test_ids)
    (out / FILE).unlink(missing_ok=True)  # from an earlier run into this folder
    if exposures and all(name in exposures for name in scene.image_names):
        write_exposures(out, {name: exposures[name] for name in scene.image_names})
    scene.cache_downscaled()
    shutil.rmtree(out / "colmap", ignore_errors=True)
    return {
        "source": source,
        "images": {"input": len(names) + len(skipped), "imported": len(names), "registered": len(result.registered)},
        "skipped": skipped,
        "unregistered": result.unregistered,
        "models": result.models,
        "points": result.points,
        "mean_reprojection_error_px": round(result.reprojection_error, 4),
        "camera_model": "PINHOLE (undistorted)" if config.undistort else config.camera_model,
        "mapper": result.mapper,
        "notes": result.notes,
        "config": {**asdict(config), "vocab_tree": None if config.vocab_tree is None else str(config.vocab_tree)},
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
    }
