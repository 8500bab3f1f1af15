"""Reading JSON camera files with errors that name the file, and the OpenGL camera flip."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from spatial.errors import file_error
from spatial.transforms import MAX_COORDINATE

# OpenGL/Blender camera axes (+x right, +y up, +z back) <-> OpenCV (+x right, +y down, +z forward).
# The same diagonal matrix converts both ways; it is applied to the camera side of cam_to_world.
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])
MAX_IMAGE_SIDE = 65535  # pixels: larger sizes in a camera file are mistakes (and would allocate without end)


MAX_JSON_BYTES = 256 * 2**20  # a camera or world file is kilobytes; this refuses a runaway one before reading it
MAX_JSON_DEPTH = 64  # the deepest file spatial reads nests 5 levels (a glTF's extensions); json recurses per level


class _NotFinite(ValueError):
    pass


def _no_constant(name: str):
    raise _NotFinite(f"{name} is not a number JSON allows")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) >= 2**63:
        raise _NotFinite(f"{text[:40]} is too large for a 64-bit integer")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise _NotFinite(f"{text} is too large for a 64-bit float")
    return value


def read_json(path: Path) -> dict:
    """A JSON object from `path`; every problem (missing, not UTF-8, malformed, NaN or Infinity, a number
    that overflows, nested too deeply, not an object) is a one-line error naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise file_error(path, f"is {path.stat().st_size / 2**20:.0f} MB, too large for a JSON camera or world "
                                   f"file (at most {MAX_JSON_BYTES >> 20} MB)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise file_error(path, "file not found") from None
    except IsADirectoryError:
        raise file_error(path, "is a folder, not a JSON file") from None
    except OSError as e:
        raise file_error(path, f"cannot read ({e.strerror or e})") from None
    return parse_json(data, path)


def parse_json(data: bytes, path: Path, what: str = "") -> dict:
    """A JSON object from `data` (a file's bytes, or part of one: `what` names the part, as "its meta.json"),
    with `read_json`'s checks: UTF-8, well formed, finite numbers only, at most `MAX_JSON_DEPTH` deep, an object."""
    where = f"{what} is " if what else ""
    if json_depth(data) > MAX_JSON_DEPTH:
        raise file_error(path, f"{where}nested more than {MAX_JSON_DEPTH} levels deep, which no file spatial reads is")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float,
                           parse_int=_bounded_int)
    except UnicodeDecodeError as e:
        raise file_error(path, f"{where}not UTF-8 text (byte {e.start}); expected a JSON file") from None
    except json.JSONDecodeError as e:
        raise file_error(path, f"{where}malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except _NotFinite as e:
        raise file_error(path, f"{what + ': ' if what else ''}{e}; spatial's JSON files hold finite numbers only"
                         ) from None
    except RecursionError:  # json_depth counts brackets outside strings; this is only a second guard
        raise file_error(path, f"{where}nested too deeply") from None
    if not isinstance(value, dict):
        raise file_error(path, f"{where}not a JSON object at the top level")
    return value


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)  # a JSON string, escapes included


def json_depth(data: bytes) -> int:
    """The deepest nesting of `[` and `{` in JSON text, strings skipped (without parsing it)."""
    brackets = np.frombuffer(_STRING.sub(b'""', data), np.uint8)
    steps = ((brackets == 0x5B) | (brackets == 0x7B)).astype(np.int64) - ((brackets == 0x5D) | (brackets == 0x7D))
    return int(np.cumsum(steps).max(initial=0))


def number(path: Path, where: str, value, lo: float | None = None, hi: float | None = None,
           integer: bool = False, lo_open: bool = False):
    """`value` checked as a number (an int when `integer`) within [lo, hi] (lo excluded when `lo_open`)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok:
        raise file_error(path, f"{where} must be {'a whole number' if integer else 'a number'}, got {value!r}")
    if (lo is not None and (value <= lo if lo_open else value < lo)) or (hi is not None and value > hi):
        low = f"above {lo}" if lo_open else f"at least {lo}"
        bounds = low if hi is None else f"{low} and at most {hi:g}" if lo_open else f"between {lo} and {hi:g}"
        raise file_error(path, f"{where} must be {bounds}, got {value!r}")
    return int(value) if integer else float(value)


def text(path: Path, where: str, value) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise file_error(path, f"{where} must be a non-empty string, got {value!r:.80}")
    return value


FOCAL_RANGE = (0.01, 1e4)  # focal length / image side: fields of view from 176 degrees (or a fisheye's) to 0.006


def check_intrinsics(path: Path, where: str, fx: float, fy: float, cx: float, cy: float, w: int, h: int) -> None:
    """Refuse a camera no lens makes: a focal length far outside `FOCAL_RANGE` of the image size (0 renders
    nothing; a huge one a single pixel), or a principal point more than an image away from the image."""
    lo, hi = FOCAL_RANGE
    for name, f, side in (("fl_x", fx, w), ("fl_y", fy, h)):
        if not (math.isfinite(f) and lo * side <= f <= hi * side):
            raise file_error(path, f"{where}: focal length {name} is {f:.4g} pixels for an image {side} pixels "
                                   f"across; expected {lo * side:.4g} to {hi * side:.4g}")
    for name, c, side in (("cx", cx, w), ("cy", cy, h)):
        if not (math.isfinite(c) and -side <= c <= 2 * side):
            raise file_error(path, f"{where}: principal point {name} is {c:.4g}, more than an image ({side} pixels) "
                                   "away from the image")


def check_rigid(path: Path, where: str, cam_to_world: np.ndarray, tolerance: float = 1e-2) -> None:
    """Refuse a pose whose rotation is not one (all zeros, scaled, sheared): it would render nothing."""
    R = cam_to_world[:3, :3]
    with np.errstate(all="ignore"):  # entries of 1e300 overflow; they are refused all the same
        rotation = np.allclose(R @ R.T, np.eye(3), atol=tolerance) and abs(np.linalg.det(R) - 1) <= tolerance
    if not rotation:
        raise file_error(path, f"{where}: the pose's rotation is not a rotation (its 3x3 part must be orthonormal "
                               f"with determinant 1; determinant {np.linalg.det(R):.3g})")


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
    if np.abs(T[:3, 3]).max() > MAX_COORDINATE:
        raise file_error(path, f"frame {index}: the camera is {np.abs(T[:3, 3]).max():.3g} units from the origin, "
                               f"beyond the {MAX_COORDINATE:g} a scene spans")
    check_rigid(path, f"frame {index}", T)
    return T @ GL_FROM_CV


def gl_matrix(cam_to_world_cv: np.ndarray) -> list[list[float]]:
    """OpenCV cam_to_world to the OpenGL transform_matrix that nerfstudio and Blender write."""
    return (cam_to_world_cv @ GL_FROM_CV).tolist()
