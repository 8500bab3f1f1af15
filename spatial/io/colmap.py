"""COLMAP scene folders: `images/` beside `sparse/0/` (binary or text), read into and written from a Scene."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from spatial.cameras import Cameras
from spatial.distortion import CameraModel, common_model, promote
from spatial.errors import SpatialError, file_error
from spatial.io import colmap_binary, colmap_text
from spatial.io.colmap_model import (
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    ColmapPoints,
)
from spatial.io.paths import check_inside, inside
from spatial.io.split_lists import read_split_lists, write_split_lists
from spatial.scene import Scene, every_nth_split
from spatial.transforms import MAX_COORDINATE, quat_to_rotmat, rotmat_to_quat


# ---- model files: found, read and written (text or binary) ----------------------------------
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
    readers = (colmap_binary.read_cameras, colmap_binary.read_images, colmap_binary.read_points) if ext == "bin" \
        else (colmap_text.read_cameras, colmap_text.read_images, colmap_text.read_points)
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
        colmap_binary.write_cameras(model.cameras, folder / "cameras.bin")
        colmap_binary.write_images(model.images, folder / "images.bin")
        colmap_binary.write_points(model.points, folder / "points3D.bin")
    else:
        colmap_text.write_cameras(model.cameras, folder / "cameras.txt")
        colmap_text.write_images(model.images, folder / "images.txt")
        colmap_text.write_points(model.points, folder / "points3D.txt")


UNSUPPORTED_HINT = "undistort the images first (`colmap image_undistorter`) or reconstruct with OPENCV cameras"


def camera_from_colmap(camera: ColmapCamera, path: Path) -> tuple[CameraModel, np.ndarray, np.ndarray]:
    """Our model, K `[3, 3]` and coefficients `[4]` for a COLMAP camera."""
    p = camera.params
    if camera.model == "SIMPLE_PINHOLE":
        model, (fx, fy, cx, cy), dist = CameraModel.PINHOLE, (p[0], p[0], p[1], p[2]), [0, 0, 0, 0]
    elif camera.model == "PINHOLE":
        model, (fx, fy, cx, cy), dist = CameraModel.PINHOLE, p[:4], [0, 0, 0, 0]
    elif camera.model == "SIMPLE_RADIAL":
        model, (fx, fy, cx, cy), dist = CameraModel.SIMPLE_RADIAL, (p[0], p[0], p[1], p[2]), [p[3], 0, 0, 0]
    elif camera.model == "RADIAL":
        model, (fx, fy, cx, cy), dist = CameraModel.OPENCV, (p[0], p[0], p[1], p[2]), [p[3], p[4], 0, 0]
    elif camera.model in ("OPENCV", "OPENCV_FISHEYE"):
        model, (fx, fy, cx, cy), dist = CameraModel(camera.model), p[:4], p[4:8]
    else:
        raise file_error(path, f"camera {camera.id} uses the {camera.model} model, which spatial does not "
                               f"support; {UNSUPPORTED_HINT}")
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    return model, K, np.asarray(dist, np.float64)


def is_pinhole(model: CameraModel, dist) -> bool:
    """A perspective camera without distortion, whatever model it was read as (nerfstudio's transforms.json says
    OPENCV with zero coefficients). It is written as PINHOLE: the 3DGS reference loader accepts only PINHOLE and
    SIMPLE_PINHOLE cameras."""
    return model == CameraModel.PINHOLE or (model != CameraModel.OPENCV_FISHEYE and not np.any(np.asarray(dist)))


def camera_to_colmap(camera_id: int, model: CameraModel, K: np.ndarray, dist: np.ndarray,
                     width: int, height: int) -> ColmapCamera:
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if is_pinhole(model, dist):
        return ColmapCamera(camera_id, "PINHOLE", width, height, np.array([fx, fy, cx, cy]))
    if model == CameraModel.SIMPLE_RADIAL and fx == fy:
        return ColmapCamera(camera_id, "SIMPLE_RADIAL", width, height, np.array([fx, cx, cy, dist[0]]))
    name = "OPENCV_FISHEYE" if model == CameraModel.OPENCV_FISHEYE else "OPENCV"
    return ColmapCamera(camera_id, name, width, height, np.array([fx, fy, cx, cy, *dist]))


def load_colmap(path: Path, images_dir: Path | None = None, test_every: int = 8) -> Scene:
    """A COLMAP scene folder (or a model folder, with `images_dir` given)."""
    path = Path(path).resolve()
    found = find_model(path)
    if found is None:
        raise file_error(path, "no COLMAP model found (looked for cameras.bin/.txt in ., sparse/0 and sparse)")
    model_dir = found[0]
    model = read_model(model_dir)
    if not model.images:
        raise file_error(model_dir, "the COLMAP model has no registered images")
    root = path if path.is_dir() else path.parent
    if images_dir is None:
        images_dir = root / "images"
        if not images_dir.is_dir():
            raise file_error(images_dir, "image folder not found; pass the folder that holds the images")

    images = sorted(model.images.values(), key=lambda im: im.name)
    models, Ks, dists, c2w, widths, heights = [], [], [], [], [], []
    cache: dict[int, tuple] = {}
    for im in images:
        if im.camera_id not in model.cameras:
            raise file_error(model_dir, f"image {im.name!r} refers to camera {im.camera_id}, which the model lacks")
        if im.camera_id not in cache:
            cache[im.camera_id] = _checked_camera(model.cameras[im.camera_id], model_dir)
        if not (np.isfinite(im.qvec).all() and np.isfinite(im.tvec).all() and np.linalg.norm(im.qvec) > 1e-8):
            raise file_error(model_dir, f"image {im.name!r} has a non-finite or zero pose (qvec {im.qvec.tolist()})")
        if np.abs(im.tvec).max() > MAX_COORDINATE:
            raise file_error(model_dir, f"image {im.name!r} is {np.abs(im.tvec).max():.3g} units from the origin, "
                                        f"beyond the {MAX_COORDINATE:g} a scene spans")
        cam_model, K, dist = cache[im.camera_id]
        models.append(cam_model)
        Ks.append(K)
        dists.append(dist)
        widths.append(model.cameras[im.camera_id].width)
        heights.append(model.cameras[im.camera_id].height)
        R = quat_to_rotmat(torch.from_numpy(im.qvec)).numpy()  # cam_from_world
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R.T, -R.T @ im.tvec
        c2w.append(T)
    try:
        batch_model = common_model(models)
    except ValueError as e:
        raise file_error(model_dir, str(e)) from None
    dist = torch.stack([promote(m, torch.from_numpy(d), batch_model) for m, d in zip(models, dists)])
    cameras = Cameras(
        torch.from_numpy(np.stack(c2w)).float(), torch.from_numpy(np.stack(Ks)).float(),
        torch.tensor(widths), torch.tensor(heights), batch_model, dist.float(),
    )
    if not np.isfinite(model.points.xyz).all():
        raise file_error(model_dir, "some 3D points have NaN or infinite coordinates")
    names = [im.name for im in images]
    train, test = read_split_lists(root, names) or every_nth_split(len(images), test_every)
    views = _point_views(model, {im.id: i for i, im in enumerate(images)})
    return Scene(
        cameras=cameras,
        image_paths=[_image_path(images_dir, im.name, model_dir) for im in images],
        points=torch.from_numpy(model.points.xyz).float().reshape(-1, 3),
        point_colors=torch.from_numpy(model.points.rgb).reshape(-1, 3),
        train_ids=train, test_ids=test, root=root, image_root=images_dir, source_format="colmap",
        point_views=views,
    )


def point_views_beside(root: Path, names: list[str], points: torch.Tensor) -> torch.Tensor | None:
    """The tracks of the COLMAP model in scene folder `root` (`spatial process` and ns-process-data leave one beside
    transforms.json) as (camera, point) pairs `[N, 2]` for the cameras `names`, when the model's points are
    `points [P, 3]`, in the same order; else None."""
    found = find_model(Path(root))
    if found is None:
        return None
    try:
        model = read_model(found[0])
    except SpatialError:
        return None
    xyz = model.points.xyz.reshape(-1, 3)
    if xyz.shape != tuple(points.shape) or not np.allclose(xyz, points.double().numpy(), rtol=1e-5,
                                                           atol=1e-5 * max(float(np.abs(xyz).max(initial=0)), 1)):
        return None
    camera = {name: i for i, name in enumerate(names)}
    return _point_views(model, {im.id: camera[im.name] for im in model.images.values() if im.name in camera})


def _point_views(model: ColmapModel, camera_of: dict[int, int]) -> torch.Tensor | None:
    """(camera, point) pairs `[N, 2]` from the points' tracks, `camera_of` mapping COLMAP image ids to cameras;
    None without any. Observations of an image `camera_of` does not hold are left out."""
    tracks = [np.asarray(t, np.int64).reshape(-1, 2) for t in model.points.tracks]
    if not tracks or not sum(len(t) for t in tracks):
        return None
    image_ids = np.concatenate(tracks)[:, 0]  # [N]
    points = np.repeat(np.arange(len(tracks)), [len(t) for t in tracks])  # [N]
    ids, inverse = np.unique(image_ids, return_inverse=True)
    camera = np.array([camera_of.get(int(i), -1) for i in ids], np.int64)[inverse]  # [N], -1: an image not held
    pairs = np.unique(np.stack([camera, points], -1)[camera >= 0], axis=0)  # one pair per photo and point
    return torch.from_numpy(pairs).reshape(-1, 2) if len(pairs) else None


def _checked_camera(camera, model_dir: Path) -> tuple:
    """`camera_from_colmap`, refusing what would train on nonsense: sizes out of range, a focal length that
    is not positive, non-finite distortion."""
    from spatial.io.json_util import MAX_IMAGE_SIDE

    if not (1 <= camera.width <= MAX_IMAGE_SIDE and 1 <= camera.height <= MAX_IMAGE_SIDE):
        raise file_error(model_dir, f"camera {camera.id} is {camera.width}x{camera.height} pixels; sizes must be "
                                    f"between 1 and {MAX_IMAGE_SIDE}")
    model, K, dist = camera_from_colmap(camera, model_dir)
    if not (np.isfinite(K).all() and np.isfinite(dist).all()) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise file_error(model_dir, f"camera {camera.id} has a focal length that is not positive, or non-finite "
                                    f"parameters ({np.asarray(camera.params).tolist()})")
    return model, K, dist


def colmap_from_scene(scene: Scene) -> ColmapModel:
    """Cameras with identical intrinsics share one COLMAP camera, as COLMAP itself writes them."""
    cams = scene.cameras
    cameras: dict[int, ColmapCamera] = {}
    keys: dict[tuple, int] = {}
    images: dict[int, ColmapImage] = {}
    for i, name in enumerate(scene.image_names):
        K, dist = cams.K[i].double().numpy(), cams.dist[i].double().numpy()
        w, h = int(cams.width[i]), int(cams.height[i])
        key = (w, h, *K.reshape(-1).tolist(), *dist.tolist())
        if key not in keys:
            keys[key] = len(keys) + 1
            cameras[keys[key]] = camera_to_colmap(keys[key], cams.model, K, dist, w, h)
        w2c = cams.world_to_cam[i].double()
        images[i + 1] = ColmapImage(
            i + 1, rotmat_to_quat(w2c[:3, :3]).numpy(), w2c[:3, 3].numpy(), keys[key], name
        )
    P = scene.points.shape[0]
    points = ColmapPoints(
        ids=np.arange(1, P + 1, dtype=np.int64), xyz=scene.points.double().numpy(),
        rgb=scene.point_colors.numpy().astype(np.uint8), error=np.zeros(P), tracks=[np.zeros((0, 2), np.int32)] * P,
    )
    return ColmapModel(cameras, images, points)


def write_colmap(scene: Scene, model_dir: Path, binary: bool = True) -> None:
    """Write the scene's cameras and points as a COLMAP model (images are referenced by name). In a scene
    folder's `sparse/0`, the split goes beside `sparse/` as nerfstudio's lists (spatial/io/split_lists.py)."""
    try:
        write_model(colmap_from_scene(scene), model_dir, binary=binary)
    except OSError as e:
        raise SpatialError(f"{model_dir}: cannot write the COLMAP model ({e.strerror})") from None
    if model_dir.parent.name == "sparse":
        write_split_lists(model_dir.parent.parent, scene.image_names, scene.train_ids, scene.test_ids)


# ---- the layout's entry in spatial.io.SCENE_LAYOUTS -------------------------------------------
def detect(path: Path) -> bool:
    return Path(path).is_dir() and find_model(Path(path)) is not None


def load(path: Path, test_every: int) -> Scene:
    return load_colmap(path, test_every=test_every)


def write(scene: Scene, folder: Path) -> None:
    write_colmap(scene, Path(folder) / "sparse" / "0", binary=True)


def write_text(scene: Scene, folder: Path) -> None:
    write_colmap(scene, Path(folder) / "sparse" / "0", binary=False)


def _image_path(images_dir: Path, name: str, model_dir: Path) -> Path:
    """An image the model names, kept in the image folder (spatial/io/paths.py)."""
    path = inside(images_dir, name, model_dir, "image name")
    check_inside(images_dir, path, model_dir, f"image {name[:200]!r}")
    return path
