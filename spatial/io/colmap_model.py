"""COLMAP sparse models, text and binary, read and written losslessly.

This is the raw file layer (every camera, image, 2D observation and track). `spatial.io.colmap`
turns it into a `Scene`. The layouts are those of COLMAP's `src/colmap/scene/reconstruction_io.cc`;
poses are `cam_from_world` as a wxyz quaternion and a translation. This file holds the types; the
files are read and written by colmap_text.py and colmap_binary.py, and found by `spatial.io.colmap.read_model`.

Why not `pycolmap.Reconstruction`, which reads the same files: models come from strangers, and its C++
reader takes a truncated cameras.bin without complaint and aborts the whole process on some damaged
images.bin and points3D.bin files; these readers check every count against the file's size first and
name the bad file in a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spatial.errors import file_error

# COLMAP's model ids and parameter counts.
MODEL_PARAMS = {
    "SIMPLE_PINHOLE": (0, 3), "PINHOLE": (1, 4), "SIMPLE_RADIAL": (2, 4), "RADIAL": (3, 5),
    "OPENCV": (4, 8), "OPENCV_FISHEYE": (5, 8), "FULL_OPENCV": (6, 12), "FOV": (7, 5),
    "SIMPLE_RADIAL_FISHEYE": (8, 4), "RADIAL_FISHEYE": (9, 5), "THIN_PRISM_FISHEYE": (10, 12),
}
MODEL_NAMES = {model_id: name for name, (model_id, _) in MODEL_PARAMS.items()}


@dataclass
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray  # [P] float64


@dataclass
class ColmapImage:
    id: int
    qvec: np.ndarray  # [4] wxyz, rotation of cam_from_world
    tvec: np.ndarray  # [3] translation of cam_from_world
    camera_id: int
    name: str
    xys: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [M, 2] pixel observations
    point3D_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [M], -1 = none


@dataclass
class ColmapPoints:
    ids: np.ndarray  # [P] int64
    xyz: np.ndarray  # [P, 3] float64
    rgb: np.ndarray  # [P, 3] uint8
    error: np.ndarray  # [P] float64
    tracks: list[np.ndarray]  # P arrays [L, 2] int32 of (image_id, point2D_idx)

    @staticmethod
    def empty() -> ColmapPoints:
        return ColmapPoints(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3), np.uint8), np.zeros(0), [])


@dataclass
class ColmapModel:
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points: ColmapPoints


def check_params(path: Path, model: str, params: list | np.ndarray) -> None:
    if model not in MODEL_PARAMS:
        raise file_error(path, f"unknown camera model {model!r}")
    if len(params) != MODEL_PARAMS[model][1]:
        raise file_error(path, f"camera model {model} needs {MODEL_PARAMS[model][1]} parameters, got {len(params)}")
