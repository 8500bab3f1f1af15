"""COLMAP's binary model files (cameras.bin, images.bin, points3D.bin), read with every count checked
against the file's size before anything is allocated; the types and the text files are colmap_model.py's."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from spatial.errors import file_error
from spatial.io.colmap_model import MODEL_NAMES, MODEL_PARAMS, ColmapCamera, ColmapImage, ColmapPoints, check_params


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


def read_cameras(path: Path) -> dict[int, ColmapCamera]:
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


def read_images(path: Path) -> dict[int, ColmapImage]:
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


def read_points(path: Path) -> ColmapPoints:
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


def write_cameras(cameras: dict[int, ColmapCamera], path: Path) -> None:
    out = [struct.pack("<Q", len(cameras))]
    for c in cameras.values():
        check_params(path, c.model, c.params)
        out.append(struct.pack("<iiQQ", c.id, MODEL_PARAMS[c.model][0], c.width, c.height))
        out.append(np.asarray(c.params, "<f8").tobytes())
    path.write_bytes(b"".join(out))


def write_images(images: dict[int, ColmapImage], path: Path) -> None:
    out = [struct.pack("<Q", len(images))]
    for im in images.values():
        out.append(struct.pack("<idddddddi", im.id, *map(float, im.qvec), *map(float, im.tvec), im.camera_id))
        out.append(im.name.encode("utf-8") + b"\0")
        obs = np.zeros(len(im.xys), _POINT2D)
        obs["xy"], obs["id"] = im.xys, im.point3D_ids
        out.append(struct.pack("<Q", len(obs)) + obs.tobytes())
    path.write_bytes(b"".join(out))


def write_points(points: ColmapPoints, path: Path) -> None:
    out = [struct.pack("<Q", len(points.ids))]
    for i in range(len(points.ids)):
        out.append(struct.pack("<QdddBBBd", int(points.ids[i]), *map(float, points.xyz[i]),
                               *map(int, points.rgb[i]), float(points.error[i])))
        track = np.asarray(points.tracks[i], "<i4").reshape(-1, 2)
        out.append(struct.pack("<Q", len(track)) + track.tobytes())
    path.write_bytes(b"".join(out))
