"""COLMAP sparse models, text and binary, read and written losslessly.

This is the raw file layer (every camera, image, 2D observation and track). `spatial.io.colmap`
turns it into a `Scene`. The layouts are those of COLMAP's `src/colmap/scene/reconstruction_io.cc`;
poses are `cam_from_world` as a wxyz quaternion and a translation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spatial.errors import SpatialError, file_error

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


def find_model(path: Path) -> tuple[Path, str] | None:
    """The folder holding `cameras.bin`/`.txt` at `path`, `path/sparse/0` or `path/sparse`."""
    for folder in (path, path / "sparse" / "0", path / "sparse"):
        for ext in ("bin", "txt"):
            if (folder / f"cameras.{ext}").is_file():
                return folder, ext
    return None


def read_model(folder: Path) -> ColmapModel:
    """Read a COLMAP model folder; binary files win when both kinds are present."""
    found = find_model(folder)
    if found is None:
        raise file_error(folder, "no COLMAP model here (expected cameras.bin or cameras.txt)")
    folder, ext = found
    for name in ("cameras", "images", "points3D"):
        if not (folder / f"{name}.{ext}").is_file():
            raise file_error(folder / f"{name}.{ext}", "missing from the COLMAP model")
    readers = (_read_cameras_bin, _read_images_bin, _read_points_bin) if ext == "bin" else (
        _read_cameras_txt, _read_images_txt, _read_points_txt)
    parts = []
    for reader, name in zip(readers, ("cameras", "images", "points3D")):
        path = folder / f"{name}.{ext}"
        try:
            parts.append(reader(path))
        except SpatialError:
            raise
        except (ValueError, IndexError, struct.error, KeyError, UnicodeDecodeError) as e:
            raise file_error(path, f"malformed COLMAP {name} file ({e})") from None
    model = ColmapModel(*parts)
    for image in model.images.values():
        if image.camera_id not in model.cameras:
            raise file_error(
                folder / f"images.{ext}",
                f"image {image.name!r} refers to camera {image.camera_id}, which cameras.{ext} does not define",
            )
    return model


def write_model(model: ColmapModel, folder: Path, binary: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if binary:
        _write_cameras_bin(model.cameras, folder / "cameras.bin")
        _write_images_bin(model.images, folder / "images.bin")
        _write_points_bin(model.points, folder / "points3D.bin")
    else:
        _write_cameras_txt(model.cameras, folder / "cameras.txt")
        _write_images_txt(model.images, folder / "images.txt")
        _write_points_txt(model.points, folder / "points3D.txt")


# ---- text -----------------------------------------------------------------------------------
def _data_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _check_params(path: Path, model: str, params: list | np.ndarray) -> None:
    if model not in MODEL_PARAMS:
        raise file_error(path, f"unknown camera model {model!r}")
    if len(params) != MODEL_PARAMS[model][1]:
        raise file_error(path, f"camera model {model} needs {MODEL_PARAMS[model][1]} parameters, got {len(params)}")


def _read_cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for line in _data_lines(path):
        tok = line.split()
        params = np.array([float(v) for v in tok[4:]])
        _check_params(path, tok[1], params)
        cameras[int(tok[0])] = ColmapCamera(int(tok[0]), tok[1], int(tok[2]), int(tok[3]), params)
    return cameras


def _read_images_txt(path: Path) -> dict[int, ColmapImage]:
    # Two lines per image; the second (observations) may be empty, so blank lines matter here.
    lines = [line.rstrip("\n") for line in path.read_text().splitlines() if not line.startswith("#")]
    while lines and not lines[-1].strip():
        lines.pop()
    images = {}
    for i in range(0, len(lines), 2):
        tok = lines[i].split(maxsplit=9)
        if len(tok) != 10:
            raise ValueError(f"image line {lines[i]!r} should have 10 fields")
        obs = np.array(lines[i + 1].split() if i + 1 < len(lines) else [], dtype=np.float64).reshape(-1, 3)
        images[int(tok[0])] = ColmapImage(
            int(tok[0]), np.array(tok[1:5], np.float64), np.array(tok[5:8], np.float64), int(tok[8]), tok[9],
            obs[:, :2], obs[:, 2].astype(np.int64),
        )
    return images


def _read_points_txt(path: Path) -> ColmapPoints:
    rows = [line.split() for line in _data_lines(path)]
    if not rows:
        return ColmapPoints.empty()
    return ColmapPoints(
        ids=np.array([int(r[0]) for r in rows], np.int64),
        xyz=np.array([r[1:4] for r in rows], np.float64),
        rgb=np.array([r[4:7] for r in rows], np.int64).astype(np.uint8),
        error=np.array([r[7] for r in rows], np.float64),
        tracks=[np.array(r[8:], np.int32).reshape(-1, 2) for r in rows],
    )


def _write_cameras_txt(cameras: dict[int, ColmapCamera], path: Path) -> None:
    lines = ["# Camera list with one line of data per camera:",
             "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]", f"# Number of cameras: {len(cameras)}"]
    for c in cameras.values():
        lines.append(" ".join([str(c.id), c.model, str(c.width), str(c.height)] + [repr(float(p)) for p in c.params]))
    path.write_text("\n".join(lines) + "\n")


def _write_images_txt(images: dict[int, ColmapImage], path: Path) -> None:
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
             "#   POINTS2D[] as (X, Y, POINT3D_ID)", f"# Number of images: {len(images)}"]
    for im in images.values():
        pose = [repr(float(v)) for v in (*im.qvec, *im.tvec)]
        lines.append(" ".join([str(im.id), *pose, str(im.camera_id), im.name]))
        lines.append(" ".join(f"{float(x)!r} {float(y)!r} {int(p)}" for (x, y), p in zip(im.xys, im.point3D_ids)))
    path.write_text("\n".join(lines) + "\n")


def _write_points_txt(points: ColmapPoints, path: Path) -> None:
    lines = ["# 3D point list with one line of data per point:",
             "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
             f"# Number of points: {len(points.ids)}"]
    for i in range(len(points.ids)):
        fields = [str(int(points.ids[i])), *(repr(float(v)) for v in points.xyz[i]),
                  *(str(int(v)) for v in points.rgb[i]), repr(float(points.error[i]))]
        fields += [str(int(v)) for v in points.tracks[i].reshape(-1)]
        lines.append(" ".join(fields))
    path.write_text("\n".join(lines) + "\n")


# ---- binary ---------------------------------------------------------------------------------
class _Reader:
    def __init__(self, path: Path):
        self.data = path.read_bytes()
        self.pos = 0

    def unpack(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def array(self, dtype: np.dtype, count: int) -> np.ndarray:
        dtype = np.dtype(dtype)
        if self.pos + dtype.itemsize * count > len(self.data):
            raise ValueError("file ends early")
        out = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += dtype.itemsize * count
        return out

    def string(self) -> str:
        end = self.data.index(b"\0", self.pos)
        out = self.data[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return out


def _read_cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    r, cameras = _Reader(path), {}
    (count,) = r.unpack("Q")
    for _ in range(count):
        camera_id, model_id, width, height = r.unpack("iiQQ")
        if model_id not in MODEL_NAMES:
            raise file_error(path, f"unknown camera model id {model_id}")
        name = MODEL_NAMES[model_id]
        params = np.array(r.unpack("d" * MODEL_PARAMS[name][1]))
        cameras[camera_id] = ColmapCamera(camera_id, name, width, height, params)
    return cameras


_POINT2D = np.dtype([("xy", "<f8", 2), ("id", "<i8")])
_TRACK = np.dtype([("image_id", "<i4"), ("point2D_idx", "<i4")])


def _read_images_bin(path: Path) -> dict[int, ColmapImage]:
    r, images = _Reader(path), {}
    (count,) = r.unpack("Q")
    for _ in range(count):
        image_id, *pose, camera_id = r.unpack("idddddddi")
        name = r.string()
        (n_obs,) = r.unpack("Q")
        obs = r.array(_POINT2D, n_obs)
        images[image_id] = ColmapImage(
            image_id, np.array(pose[:4]), np.array(pose[4:]), camera_id, name,
            obs["xy"].copy(), obs["id"].astype(np.int64),
        )
    return images


def _read_points_bin(path: Path) -> ColmapPoints:
    r = _Reader(path)
    (count,) = r.unpack("Q")
    ids, xyz, rgb, err, tracks = [], [], [], [], []
    for _ in range(count):
        point_id, x, y, z, red, green, blue, error, length = r.unpack("QdddBBBdQ")
        ids.append(point_id)
        xyz.append((x, y, z))
        rgb.append((red, green, blue))
        err.append(error)
        track = r.array(_TRACK, length)
        tracks.append(np.stack([track["image_id"], track["point2D_idx"]], -1).astype(np.int32))
    if not ids:
        return ColmapPoints.empty()
    return ColmapPoints(np.array(ids, np.int64), np.array(xyz), np.array(rgb, np.uint8), np.array(err), tracks)


def _write_cameras_bin(cameras: dict[int, ColmapCamera], path: Path) -> None:
    out = [struct.pack("<Q", len(cameras))]
    for c in cameras.values():
        _check_params(path, c.model, c.params)
        out.append(struct.pack("<iiQQ", c.id, MODEL_PARAMS[c.model][0], c.width, c.height))
        out.append(np.asarray(c.params, "<f8").tobytes())
    path.write_bytes(b"".join(out))


def _write_images_bin(images: dict[int, ColmapImage], path: Path) -> None:
    out = [struct.pack("<Q", len(images))]
    for im in images.values():
        out.append(struct.pack("<idddddddi", im.id, *map(float, im.qvec), *map(float, im.tvec), im.camera_id))
        out.append(im.name.encode("utf-8") + b"\0")
        obs = np.zeros(len(im.xys), _POINT2D)
        obs["xy"], obs["id"] = im.xys, im.point3D_ids
        out.append(struct.pack("<Q", len(obs)) + obs.tobytes())
    path.write_bytes(b"".join(out))


def _write_points_bin(points: ColmapPoints, path: Path) -> None:
    out = [struct.pack("<Q", len(points.ids))]
    for i in range(len(points.ids)):
        out.append(struct.pack("<QdddBBBd", int(points.ids[i]), *map(float, points.xyz[i]),
                               *map(int, points.rgb[i]), float(points.error[i])))
        track = np.asarray(points.tracks[i], "<i4").reshape(-1, 2)
        out.append(struct.pack("<Q", len(track)) + track.tobytes())
    path.write_bytes(b"".join(out))
