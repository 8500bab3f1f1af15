"""COLMAP's text model files (cameras.txt, images.txt, points3D.txt); the types are colmap_model.py's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spatial.io.colmap_model import ColmapCamera, ColmapImage, ColmapPoints, check_params


def _data_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def read_cameras(path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for line in _data_lines(path):
        tok = line.split()
        params = np.array([float(v) for v in tok[4:]])
        check_params(path, tok[1], params)
        cameras[int(tok[0])] = ColmapCamera(int(tok[0]), tok[1], int(tok[2]), int(tok[3]), params)
    return cameras


def read_images(path: Path) -> dict[int, ColmapImage]:
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


def read_points(path: Path) -> ColmapPoints:
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


def write_cameras(cameras: dict[int, ColmapCamera], path: Path) -> None:
    lines = ["# Camera list with one line of data per camera:",
             "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]", f"# Number of cameras: {len(cameras)}"]
    for c in cameras.values():
        lines.append(" ".join([str(c.id), c.model, str(c.width), str(c.height)] + [repr(float(p)) for p in c.params]))
    path.write_text("\n".join(lines) + "\n")


def write_images(images: dict[int, ColmapImage], path: Path) -> None:
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
             "#   POINTS2D[] as (X, Y, POINT3D_ID)", f"# Number of images: {len(images)}"]
    for im in images.values():
        pose = [repr(float(v)) for v in (*im.qvec, *im.tvec)]
        lines.append(" ".join([str(im.id), *pose, str(im.camera_id), im.name]))
        lines.append(" ".join(f"{float(x)!r} {float(y)!r} {int(p)}" for (x, y), p in zip(im.xys, im.point3D_ids)))
    path.write_text("\n".join(lines) + "\n")


def write_points(points: ColmapPoints, path: Path) -> None:
    lines = ["# 3D point list with one line of data per point:",
             "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
             f"# Number of points: {len(points.ids)}"]
    for i in range(len(points.ids)):
        fields = [str(int(points.ids[i])), *(repr(float(v)) for v in points.xyz[i]),
                  *(str(int(v)) for v in points.rgb[i]), repr(float(points.error[i]))]
        fields += [str(int(v)) for v in points.tracks[i].reshape(-1)]
        lines.append(" ".join(fields))
    path.write_text("\n".join(lines) + "\n")
