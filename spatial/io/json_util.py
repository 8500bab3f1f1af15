"""Reading JSON camera files with errors that name the file, and the OpenGL camera flip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spatial.errors import file_error

# OpenGL/Blender camera axes (+x right, +y up, +z back) <-> OpenCV (+x right, +y down, +z forward).
# The same diagonal matrix converts both ways; it is applied to the camera side of cam_to_world.
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except json.JSONDecodeError as e:
        raise file_error(path, f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise file_error(path, "expected a JSON object at the top level")
    return data


def pose_matrix(path: Path, frame: dict, index: int) -> np.ndarray:
    """A frame's `transform_matrix` as a 4x4 OpenCV cam_to_world."""
    try:
        T = np.asarray(frame["transform_matrix"], np.float64)
    except KeyError:
        raise file_error(path, f"frame {index} has no transform_matrix") from None
    except (TypeError, ValueError):
        raise file_error(path, f"frame {index}: transform_matrix is not a matrix of numbers") from None
    if T.shape == (3, 4):
        T = np.vstack([T, [0, 0, 0, 1]])
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise file_error(path, f"frame {index}: transform_matrix must be a finite 4x4 (or 3x4) matrix")
    return T @ GL_FROM_CV


def gl_matrix(cam_to_world_cv: np.ndarray) -> list[list[float]]:
    """OpenCV cam_to_world to the OpenGL transform_matrix that nerfstudio and Blender write."""
    return (cam_to_world_cv @ GL_FROM_CV).tolist()
