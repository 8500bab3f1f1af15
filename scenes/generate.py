"""Render a synthetic scene and write it as a scene folder with its exact ground truth.

Besides the images and cameras in the scene's file layout, `ground_truth/` holds for every image
the camera-frame depth (`depth/NAME.npy`, 0 where nothing is hit), the world-frame normal
(`normal/NAME.npy`) and the instance (`instance/NAME.png`, 8-bit: 0 where nothing is hit, else the number of the
primitive hit, 1 for the scene's first), all through the pixel's centre, and `scene.json` summarises the geometry
(`instances`: each instance number's primitive).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image

from spatial.cameras import Cameras, pixel_centers
from spatial.io.colmap import write_colmap
from spatial.io.json_util import gl_matrix
from spatial.io.nerfstudio import write_transforms
from spatial.io.points_ply import write_points_ply
from spatial.scene import Scene, every_nth_split
from spatial.scenes.config import SceneSize
from spatial.scenes.raytrace import Primitive, first_hit, shade

SUN = torch.tensor([0.45, -0.35, 0.82])
AMBIENT = 0.45
CHUNK = 1 << 17  # rays per batch: bounds memory at ~100 MB whatever the image size


def render_view(prims: list[Primitive], cams: Cameras, index: int, supersample: int) -> dict[str, np.ndarray]:
    """rgb `[H, W, 3]` (straight, not premultiplied), alpha `[H, W]`, depth `[H, W]`, normal `[H, W, 3]`,
    instance `[H, W]` uint8 (0: nothing, i + 1: primitive i)."""
    W, H = int(cams.width[index]), int(cams.height[index])
    cam = _double(cams, index)
    sun = torch.nn.functional.normalize(SUN.double(), dim=0)
    centers = pixel_centers(W, H, dtype=torch.float64).reshape(-1, 2)  # [HW, 2]

    # Colour and coverage from a regular sub-pixel grid.
    offsets = (torch.arange(supersample, dtype=torch.float64) + 0.5) / supersample - 0.5
    sub = torch.stack(torch.meshgrid(offsets, offsets, indexing="xy"), -1).reshape(-1, 2)  # [S, 2]
    uv = (centers[:, None] + sub[None]).reshape(-1, 2)  # [HW * S, 2]
    color_sum = torch.zeros(H * W, 3, dtype=torch.float64)
    hits = torch.zeros(H * W, dtype=torch.float64)
    for start in range(0, uv.shape[0], CHUNK):
        o, d = cam.pixel_rays(uv[None, start:start + CHUNK])
        color, hit, _, _ = shade(prims, o[0], d[0], sun, AMBIENT)
        pixel = torch.arange(start, min(start + CHUNK, uv.shape[0])) // sub.shape[0]
        color_sum.index_add_(0, pixel, color)
        hits.index_add_(0, pixel, hit.double())
    alpha = hits / sub.shape[0]
    rgb = color_sum / hits.clamp_min(1)[:, None]

    # Exact geometry through each pixel centre.
    o, d = cam.pixel_rays(centers[None])
    t, index, n, _ = first_hit(prims, o[0], d[0])
    hit = torch.isfinite(t)
    forward = cam.cam_to_world[0, :3, 2]
    depth = torch.where(hit, t * (d[0] @ forward), torch.zeros_like(t))
    normal = torch.where(hit[:, None], n, torch.zeros_like(n))
    instance = torch.where(hit, index + 1, torch.zeros_like(index))
    return {
        "rgb": rgb.reshape(H, W, 3).numpy(), "alpha": alpha.reshape(H, W).numpy(),
        "depth": depth.reshape(H, W).float().numpy(), "normal": normal.reshape(H, W, 3).float().numpy(),
        "instance": instance.reshape(H, W).numpy().astype(np.uint8),
    }


def sample_points(views: list[dict], cams: Cameras, ids: list[int], count: int, seed: int) -> tuple:
    """`count` true surface points `[P, 3]` with colours `[P, 3]` uint8, spread over views `ids`."""
    g = torch.Generator().manual_seed(seed)
    per_view = -(-count // len(ids))
    points, colors = [], []
    for i in ids:
        depth = torch.from_numpy(views[i]["depth"])
        valid = torch.nonzero(depth.reshape(-1) > 0)[:, 0]
        pick = valid[torch.randperm(len(valid), generator=g)[:per_view]]
        W = depth.shape[1]
        uv = torch.stack([pick % W, pick // W], -1).double() + 0.5
        cam = _double(cams, i)
        points.append(cam.unproject(uv[None], depth.reshape(-1)[pick].double()[None])[0])
        colors.append(torch.from_numpy(to_uint8(views[i]["rgb"]).reshape(-1, 3))[pick])
    return torch.cat(points)[:count].float(), torch.cat(colors)[:count]


def _double(cams: Cameras, i: int) -> Cameras:
    """Camera `i` in float64: ray directions and unprojected points are exact to ~1e-12."""
    c = cams[i]
    return Cameras(c.cam_to_world.double(), c.K.double(), c.width, c.height, c.model, c.dist.double())


def to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def generate(spec: ModuleType, size: SceneSize, out: Path, seed: int = 0, progress=None) -> None:
    """Render every view of scene module `spec` (see `spatial.scenes.orbit`) into the folder `out`."""
    prims, cams = spec.primitives(), spec.cameras(size)
    if len(prims) > 255:
        raise ValueError(f"{len(prims)} primitives: the 8-bit instance masks hold at most 255")
    views = []
    for i in range(len(cams)):
        views.append(render_view(prims, cams, i, size.supersample))
        if progress is not None:
            progress(i + 1, len(cams))
    train, test = every_nth_split(len(cams))
    names = [f"{i:03d}" for i in range(len(cams))]
    points, colors = sample_points(views, cams, train, size.points, seed)

    if spec.LAYOUT == "blender":
        files = [f"{'test' if i in test else 'train'}/r_{n}.png" for i, n in enumerate(names)]
        for i, f in enumerate(files):
            rgba = np.concatenate([views[i]["rgb"], views[i]["alpha"][..., None]], -1)
            _save_png(out / f, to_uint8(rgba))
        angle = 2 * float(torch.atan(0.5 * cams.width[0] / cams.K[0, 0, 0]))
        for split, ids in (("train", train), ("test", test)):
            frames = [
                {"file_path": "./" + files[i][:-4], "transform_matrix": gl_matrix(cams.cam_to_world[i].numpy())}
                for i in ids
            ]
            meta = {"camera_angle_x": angle, "frames": frames}
            (out / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2))
        write_points_ply(out / "points3d.ply", points, colors)
    else:
        files = [f"images/{n}.png" for n in names]
        for i, f in enumerate(files):
            _save_png(out / f, to_uint8(views[i]["rgb"]))
        scene = Scene(cams, [out / f for f in files], points, colors, train, test, root=out, image_root=out / "images")
        write_colmap(scene, out / "sparse" / "0", binary=True)
        write_transforms(scene, out / "transforms.json")

    gt = out / "ground_truth"
    for kind in ("depth", "normal"):
        (gt / kind).mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            np.save(gt / kind / (Path(f).stem + ".npy"), views[i][kind])
    for i, f in enumerate(files):
        _save_png(gt / "instance" / (Path(f).stem + ".png"), views[i]["instance"])
    lo, hi = _geometry_bounds(views, cams)
    (gt / "scene.json").write_text(json.dumps({
        "name": spec.__name__.rsplit(".", 1)[-1], "layout": spec.LAYOUT, "size": size.__dict__, "seed": seed,
        "bounds_min": lo, "bounds_max": hi,
        "extent": float(np.linalg.norm(np.subtract(hi, lo))),  # bounding-box diagonal of the visible geometry
        "images": files, "train": train, "test": test,
        "instances": {str(i + 1): type(p).__name__.lower() for i, p in enumerate(prims)},
        "cam_to_world": cams.cam_to_world.tolist(),
    }, indent=1))


def _geometry_bounds(views: list[dict], cams: Cameras) -> tuple[list[float], list[float]]:
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for i, v in enumerate(views):
        depth = torch.from_numpy(v["depth"]).reshape(-1)
        keep = torch.nonzero(depth > 0)[:, 0]
        if len(keep) == 0:
            continue
        W = v["depth"].shape[1]
        uv = torch.stack([keep % W, keep // W], -1).float() + 0.5
        p = cams[i].unproject(uv[None], depth[keep][None])[0].numpy()
        lo, hi = np.minimum(lo, p.min(0)), np.maximum(hi, p.max(0))
    return lo.round(4).tolist(), hi.round(4).tolist()


def _save_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG", optimize=False)
