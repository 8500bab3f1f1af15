"""Structure-from-motion mappers: matched features in COLMAP's database to reconstructions.

A mapper is a function `(job) -> {id: pycolmap.Reconstruction}` named in `MAPPERS` (and so in
`SfMConfig.mapper`'s choices). `job` is a `spatial.process.sfm.SfMJob`: feature extraction and matching before
it and undistortion after it are the other stages there, which settle the config's `None`s for the capture
first. Both of today's mappers are pycolmap's.
"""

from __future__ import annotations

from pathlib import Path

LARGE_CAPTURE = 150
"""Images above which `mapper="auto"` maps globally."""


def mapper_for(mapper: str, count: int) -> str:
    """`auto`: incremental up to LARGE_CAPTURE images, global above, where incremental mapping's time grows too
    fast."""
    if mapper != "auto":
        return mapper
    return "global" if count > LARGE_CAPTURE else "incremental"


def incremental(job) -> dict:
    """COLMAP's incremental mapper: robust, the reference; its time grows quickly with the image count.
    With `config.keyframe_step` N > 1 it maps every Nth image (in name order, which is a video's frame order)
    and registers the others into that map; where that map leaves one of its images out, it maps every image
    instead."""
    import pycolmap

    config, database, images, sparse = job.config, job.database, job.capture.images, job.work / "sparse"
    sparse.mkdir(exist_ok=True)
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = config.seed
    if config.fast_mapping:
        options.ba_global_frames_ratio = options.ba_global_points_ratio = 3.0
        options.ba_local_max_refinements = 1
        options.mapper.ba_global_ignore_redundant_points3D = True
    step = config.keyframe_step or 1
    if step > 1:
        models = _map_keyframes(database, images, sparse, options, step)
        if models:
            return models
    return pycolmap.incremental_mapping(database, images, sparse, options)


def _map_keyframes(database: Path, images: Path, sparse: Path, options, step: int) -> dict:
    """Map every `step`th image, then register each other image into the map by its matches with the map's
    points (absolute pose, then triangulation of its new points; no bundle adjustment). A video's frames
    overlap so closely that the skipped frames add little to the map but their bundle adjustments' time.
    Returns {} when the largest model lacks a keyframe; an image that no registration places stays out."""
    import pycolmap

    db = pycolmap.Database.open(str(database))
    try:
        names = sorted(image.name for image in db.read_all_images())
        cache = pycolmap.DatabaseCache.create(db, pycolmap.DatabaseCacheOptions(
            min_num_matches=options.min_num_matches))
    finally:
        db.close()
    keyframes = names[::step]
    options.image_names = keyframes
    try:
        models = pycolmap.incremental_mapping(database, images, sparse, options)
    finally:
        options.image_names = []
    if not models:
        return {}
    best = max(models.values(), key=lambda model: model.num_reg_images())
    if best.num_reg_images() < len(keyframes):
        return {}
    mapper = pycolmap.IncrementalMapper(cache)
    mapper.begin_reconstruction(best)  # adds the other images, unregistered
    by_name = {image.name: image_id for image_id, image in best.images.items()}
    mapper_options, triangulation = options.get_mapper(), options.get_triangulation()
    for _ in range(2):  # a frame that fails may succeed once its neighbours have added their points
        for name in names:
            image_id = by_name.get(name)  # None: an image without matches, which the map never took in
            if image_id is None or best.images[image_id].has_pose:
                continue
            if mapper.register_next_image(mapper_options, image_id):
                mapper.triangulate_image(triangulation, image_id)
                best.extract_colors_for_image(image_id, str(images))
    mapper.end_reconstruction(False)
    return models


def global_mapping(job) -> dict:
    """GLOMAP-style global mapping (rotation averaging, then global positioning): faster on large captures."""
    import pycolmap

    sparse = job.work / "sparse"
    sparse.mkdir(exist_ok=True)
    return pycolmap.global_mapping(job.database, job.capture.images, sparse)


MAPPERS = {"incremental": incremental, "global": global_mapping}
