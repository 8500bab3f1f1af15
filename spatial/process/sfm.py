"""Structure from motion with pycolmap, in stages: features are extracted, matched by a matcher
(spatial/process/matchers.py), mapped by a mapper (spatial/process/mappers.py), and the best model's images
undistorted into the scene folder; COLMAP's log is kept beside it.

    result = run_sfm(Capture(images, names, sequence=False), out, SfMConfig())

Each stage is a function of one `SfMJob` (the capture, its settled config, the working folder), so a new
matcher or mapper is a file and a line in its registry, and another SfM backend replaces the stages it needs.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from spatial.errors import SpatialError
from spatial.process.mappers import LARGE_CAPTURE, MAPPERS, mapper_for
from spatial.process.matchers import MATCHERS, check_vocab_tree, matcher_for


@dataclass
class SfMConfig:
    camera_model: Literal["OPENCV", "SIMPLE_RADIAL", "PINHOLE", "OPENCV_FISHEYE"] = "OPENCV"
    """Lens model to calibrate; OPENCV suits phone cameras."""
    matcher: Literal[("auto", *MATCHERS)] = "auto"
    """Which pairs to match (spatial/process/matchers.py): exhaustive for photo sets, sequential (with overlap)
    for video frames; auto is sequential for videos and exhaustive for photo sets up to 200 images."""
    mapper: Literal[("auto", *MAPPERS)] = "auto"
    """COLMAP's incremental mapper, or GLOMAP-style global mapping (see spatial/process/mappers.py); auto is
    incremental up to 150 images and global above, where incremental mapping's time grows too fast."""
    vocab_tree: Path | None = None
    """A local COLMAP vocabulary tree (vocab_tree_*.bin) for loop closure: sequential matching then also
    matches a video's frames that come back to a place seen before. Never downloaded."""
    max_image_size: int | None = None
    """Longest image side used for feature extraction. None: 1024 for a video's frames, which are many and
    overlap closely (faster with unchanged pose accuracy: scripts/results/video_processing*.txt); 1600 for photo
    sets."""
    max_features: int = 8192
    """Most SIFT features per image."""
    sequential_overlap: int = 10
    """Sequential matching: each frame is matched with the frames 1, 2, 4, ... 2^(N-1) after it (COLMAP's
    quadratic overlap), N being this number."""
    fast_mapping: bool | None = None
    """Incremental mapping with fewer bundle adjustments: the whole model is adjusted again when it has grown 3x
    since the last time (COLMAP: 1.1x), without the 3D points that other points already cover, and each local
    adjustment is refined once (COLMAP: twice): faster with unchanged pose accuracy on a video
    (scripts/results/video_processing*.txt). None: on for a video's frames, which join in order and drift little
    in between; off for photo sets."""
    keyframe_step: int | None = None
    """Incremental mapping of every Nth image (in name order: a video's frame order) only, the others then
    registered into that map by their matches with its points, without bundle adjustments of their own; where
    that leaves an image of the map out, every image is mapped instead. Sequential matching then pairs the
    others only with the frames up to twice the step after them. A power of two, since sequential matching
    pairs frames 1, 2, 4, ... apart. None: for a video's frames, which overlap so closely that most add little
    to the map but time, the largest step that still maps 25 keyframes, and at least 2 (2 up to 99 frames, 4 from
    100; the time it saves and the pose accuracy it keeps: scripts/results/video_processing*.txt); 1 (every
    image) for photo sets."""
    undistort: bool = True
    """Write undistorted images and PINHOLE cameras (what splat training needs)."""
    seed: int = 0
    """Seed of the mapper's random choices."""


VIDEO_FEATURE_SIZE = 1024
PHOTO_FEATURE_SIZE = 1600
"""Longest image side for feature extraction when `SfMConfig.max_image_size` is None."""

VIDEO_KEYFRAMES = 25
"""Keyframes a video's frames are mapped by, at least, when `SfMConfig.keyframe_step` is None."""


def video_keyframe_step(count: int) -> int:
    """The largest power of two, from 2, that leaves `count` frames `VIDEO_KEYFRAMES` keyframes or more."""
    step = 2
    while count / (2 * step) >= VIDEO_KEYFRAMES:
        step *= 2
    return step


def for_capture(config: SfMConfig, sequence: bool, count: int) -> SfMConfig:
    """`config` with what its `None`s leave to the capture settled: `count` video frames, or a photo set."""
    if config.fast_mapping is None:
        config = replace(config, fast_mapping=sequence)
    if config.max_image_size is None:
        config = replace(config, max_image_size=VIDEO_FEATURE_SIZE if sequence else PHOTO_FEATURE_SIZE)
    if config.keyframe_step is None:
        config = replace(config, keyframe_step=video_keyframe_step(count) if sequence else 1)
    return config


def check_config(config: SfMConfig) -> None:
    """Before anything runs: what would fail late, or not run as asked."""
    step = config.keyframe_step
    if step is not None and (step < 1 or step & (step - 1)):
        raise SpatialError(f"--keyframe-step {step}: must be a power of two (1, 2, 4, ...), since sequential "
                           "matching pairs frames 1, 2, 4, ... apart; 1 maps every image")
    check_vocab_tree(config.vocab_tree)


@dataclass
class Capture:
    """What structure from motion is given: images in one folder, and what is known about the camera."""

    images: Path  # the folder
    names: list[str]  # the images to use, relative to `images`
    sequence: bool  # frames of one video, in order (one camera; matched with their neighbours)
    focal_px: float | None = None  # from EXIF, when every photo agrees
    size: tuple[int, int] | None = None  # (width, height) when every image has it: one camera for all


@dataclass
class SfMResult:
    registered: list[str]
    unregistered: dict[str, str]  # image -> likely cause
    models: int
    points: int
    reprojection_error: float
    seconds: dict[str, float] = field(default_factory=dict)
    mapper: str = ""  # the mapper that ran
    notes: list[str] = field(default_factory=list)  # what the user should know about how it ran


@contextmanager
def colmap_log(path: Path):
    """Send what COLMAP writes to stderr (glog, from C++) into `path` instead of the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@dataclass
class SfMJob:
    """One reconstruction, as each stage sees it."""

    capture: Capture
    config: SfMConfig  # with the capture's `None`s settled (for_capture)
    out: Path  # the scene folder being made: images/ and sparse/0 go here
    matcher: str  # a name in MATCHERS
    mapper: str  # a name in MAPPERS

    @property
    def work(self) -> Path:  # COLMAP's working files: the database, the models, undistortion
        return self.out / "colmap"

    @property
    def database(self) -> Path:
        return self.work / "database.db"

    @property
    def log(self) -> Path:
        return self.out / "colmap.log"


def run_sfm(capture: Capture, out: Path, config: SfMConfig, stage=None) -> SfMResult:
    """Reconstruct the capture; writes `out/sparse/0` (and undistorted `out/images`). `stage(name)` is told as
    each stage begins."""
    config = for_capture(config, capture.sequence, len(capture.names))
    job = SfMJob(capture, config, out, matcher_for(config.matcher, capture.sequence, len(capture.names)),
                 mapper_for(config.mapper, len(capture.names)))
    stage = stage or (lambda name: None)
    shutil.rmtree(job.work, ignore_errors=True)
    job.work.mkdir(parents=True)
    seconds = {}
    with colmap_log(job.log):
        for name, key, run in (("extracting features", "extraction", extract_features),
                               ("matching", "matching", MATCHERS[job.matcher]),
                               ("mapping", "mapping", MAPPERS[job.mapper])):
            stage(name)
            t = time.time()
            models = run(job)  # the mapper's reconstructions, once the last stage has run
            seconds[key] = time.time() - t
    if not models:
        raise SpatialError(f"{capture.images}: structure from motion found no reconstruction: the photos do not "
                           "overlap enough (each part of the scene should appear in 3 or more photos, from nearby "
                           "viewpoints)")
    best_id, best = max(models.items(), key=lambda kv: kv[1].num_reg_images())
    registered = sorted(im.name for im in best.images.values() if im.has_pose)
    stage("undistorting")
    t = time.time()
    write_scene_folder(job, best, registered)
    seconds["undistortion"] = time.time() - t
    notes = []
    if job.matcher == "sequential" and config.vocab_tree is None and len(capture.names) > LARGE_CAPTURE:
        notes.append(f"{len(capture.names)} frames matched only with the frames 1, 2, 4, ... "
                     f"{2 ** (config.sequential_overlap - 1)} after them: a "
                     "video that returns to a place it has seen registers better with loop closure (--vocab-tree "
                     "FILE, a local COLMAP vocabulary tree)")
    return SfMResult(registered, unregistered_causes(job, models, best_id, registered), len(models),
                     best.num_points3D(), float(best.compute_mean_reprojection_error()), seconds, job.mapper, notes)


def extract_features(job: SfMJob) -> None:
    """SIFT features of every image into the database; one camera for a video or for photos of one size with a
    focal length from EXIF."""
    import pycolmap

    config, focal_px, size = job.config, job.capture.focal_px, job.capture.size
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = config.camera_model
    if focal_px and size:
        extra = {"OPENCV": ",0,0,0,0", "OPENCV_FISHEYE": ",0,0,0,0", "SIMPLE_RADIAL": ",0", "PINHOLE": ""}
        two_focals = config.camera_model in ("OPENCV", "OPENCV_FISHEYE", "PINHOLE")
        f = f"{focal_px},{focal_px}" if two_focals else f"{focal_px}"
        reader.camera_params = f"{f},{size[0] / 2},{size[1] / 2}{extra[config.camera_model]}"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = config.max_image_size
    extraction.sift.max_num_features = config.max_features
    mode = pycolmap.CameraMode.SINGLE if (job.capture.sequence or size) else pycolmap.CameraMode.AUTO
    pycolmap.extract_features(job.database, job.capture.images, image_names=job.capture.names, camera_mode=mode,
                              reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)


def write_scene_folder(job: SfMJob, best, registered: list[str]) -> None:
    """The best model and its images into the scene folder: undistorted to PINHOLE cameras (what splat training
    needs), or copied as they are (`config.undistort` off)."""
    import pycolmap

    out, images = job.out, job.capture.images
    model_dir = job.work / "best"
    model_dir.mkdir(exist_ok=True)
    best.write(model_dir)
    final = out / "sparse" / "0"
    shutil.rmtree(out / "sparse", ignore_errors=True)
    shutil.rmtree(out / "images", ignore_errors=True)
    with colmap_log(job.log):
        if job.config.undistort:
            pycolmap.undistort_images(job.work / "undistorted", model_dir, images, image_names=registered)
            shutil.move(str(job.work / "undistorted" / "images"), out / "images")
            final.parent.mkdir(parents=True)
            shutil.move(str(job.work / "undistorted" / "sparse"), final)
        else:
            (out / "images").mkdir()
            for name in registered:
                shutil.copy2(images / name, out / "images" / name)
            final.parent.mkdir(parents=True)
            shutil.copytree(model_dir, final)


def unregistered_causes(job: SfMJob, models: dict, best_id: int, registered: list[str]) -> dict[str, str]:
    """Each image the best model left out, with its likely cause."""
    matches = _match_counts(job.database)
    others = {i.name for k, m in models.items() if k != best_id for i in m.images.values() if i.has_pose}
    return {name: "in another, smaller reconstruction" if name in others
            else f"too few feature matches with other photos ({matches.get(name, 0)} verified matches)"
            for name in job.capture.names if name not in registered}


def _match_counts(database: Path) -> dict[str, int]:
    """Verified matches per image name, from COLMAP's database (for explaining failures)."""
    import sqlite3

    counts: dict[str, int] = {}
    try:
        with sqlite3.connect(database) as db:
            names = dict(db.execute("SELECT image_id, name FROM images"))
            for pair_id, rows in db.execute("SELECT pair_id, rows FROM two_view_geometries"):
                second = pair_id % 2147483647
                first = (pair_id - second) // 2147483647
                for image_id in (first, second):
                    if image_id in names:
                        counts[names[image_id]] = counts.get(names[image_id], 0) + rows
    except sqlite3.Error:
        return {}
    return counts
