"""Structure-from-motion mappers: matched features in COLMAP's database to reconstructions.

A mapper is a function `(database, images, sparse_dir, config) -> {id: pycolmap.Reconstruction}` named in
`MAPPERS` (and in `SfMConfig.mapper`'s choices); feature extraction, matching and undistortion around it
are shared (spatial/process/sfm.py), which settles the config's `None`s for the capture first. Both today's
mappers are pycolmap's.
"""

from __future__ import annotations

from pathlib import Path


def incremental(database: Path, images: Path, sparse: Path, config) -> dict:
    """COLMAP's incremental mapper: robust, the reference; its time grows quickly with the image count."""
    import pycolmap

    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = config.seed
    if config.fast_mapping:
        options.ba_global_frames_ratio = options.ba_global_points_ratio = 3.0
        options.ba_local_max_refinements = 1
        options.mapper.ba_global_ignore_redundant_points3D = True
    return pycolmap.incremental_mapping(database, images, sparse, options)


def global_mapping(database: Path, images: Path, sparse: Path, config) -> dict:
    """GLOMAP-style global mapping (rotation averaging, then global positioning): faster on large captures."""
    import pycolmap

    return pycolmap.global_mapping(database, images, sparse)


MAPPERS = {"incremental": incremental, "global": global_mapping}
