"""`Scene`: calibrated cameras, their images, sparse points and a train/test split.

Every loader (`spatial.io`) returns this one type, whatever the file layout on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.errors import SpatialError, file_error
from spatial.images import composite, downscaled_image, image_size, read_image
from spatial.transforms import apply_to_cam_to_world, apply_to_points, rotation_between

DEFAULT_BACKGROUND = (1.0, 1.0, 1.0)  # behind images with alpha when the scene names none: white (Blender, 3DGS)
DEFAULT_TEST_EVERY = 8  # Every 8th image held out, as in the Mip-NeRF 360 and LLFF benchmarks.


@dataclass
class Scene:
    cameras: Cameras  # [C]
    image_paths: list[Path]  # C absolute paths, in camera order
    points: Tensor  # [P, 3] float32 world positions of the sparse points (P may be 0)
    point_colors: Tensor  # [P, 3] uint8
    train_ids: list[int]
    test_ids: list[int]
    root: Path  # the scene folder: downscaled images are cached below it
    image_root: Path  # image names are the image paths relative to this folder
    background: tuple[float, float, float] | None = None  # behind RGBA images (0-1); None: white
    world_from_source: Tensor = field(default_factory=lambda: torch.eye(4))  # [4, 4] see `normalized`
    source_format: str = ""
    metadata: dict = field(default_factory=dict)  # format extras kept for writers (e.g. aabb_scale)
    notes: list[str] = field(default_factory=list)  # what the files hold that spatial does not use, to tell the user
    exposures: Tensor | None = None  # [C] float64 relative exposure of each photo (spatial/io/exposures.py), if known
    downscale: int = 1  # how much smaller than the folder's own images `image_paths` are (their images_N copies)
    full_size_paths: list[Path] | None = None  # the folder's own images, when `image_paths` are downscaled copies
    point_views: Tensor | None = None  # [N, 2] int64 (camera, point) pairs: which photo observed which sparse point
    # in the reconstruction (COLMAP's tracks), or None where the folder does not say

    def __post_init__(self) -> None:
        C = len(self.cameras)
        if len(self.image_paths) != C:
            raise ValueError(f"{len(self.image_paths)} image paths for {C} cameras")
        if self.points.shape != (self.points.shape[0], 3) or self.point_colors.shape != self.points.shape:
            raise ValueError("points and point_colors must both be [P, 3]")
        if self.exposures is not None and self.exposures.shape != (C,):
            raise ValueError(f"exposures must be [{C}], one per camera")
        if self.point_views is not None and (
                self.point_views.dim() != 2 or self.point_views.shape[1] != 2 or (self.point_views.numel() and (
                    bool((self.point_views < 0).any()) or int(self.point_views[:, 0].max()) >= C
                    or int(self.point_views[:, 1].max()) >= self.points.shape[0]))):
            raise ValueError("point_views must be [N, 2] pairs of a camera and a point of this scene")

    # ---- what is in it ----------------------------------------------------------------------
    @property
    def image_names(self) -> list[str]:
        return [p.relative_to(self.image_root).as_posix() for p in self.image_paths]

    @property
    def center(self) -> Tensor:  # [3] mean camera centre
        return self.cameras.centers.mean(dim=0)

    @property
    def extent(self) -> float:
        """Radius of the camera centres around their mean: the scene's length scale."""
        return float(torch.linalg.norm(self.cameras.centers - self.center, dim=-1).max())

    def world_radius(self, covered: float = 0.9) -> float:
        """The radius around the cameras' centre that holds the cameras and `covered` of the sparse points: the world
        they photographed, without the far trees and sky a few points fall on. A forward-facing capture looks at a
        world several times farther away than its cameras move (the phone facade: a wall 18-34 units off, cameras
        within 6), so this is wider than `extent` there; where the cameras surround what they look at, the two
        nearly agree."""
        return world_radius(self.cameras.centers, self.points, covered)

    @property
    def background_rgb(self) -> tuple[float, float, float]:
        """The colour training composites transparent pixels on: the scene's own, else white."""
        return tuple(self.background) if self.background is not None else DEFAULT_BACKGROUND

    def __len__(self) -> int:
        return len(self.cameras)

    def load_image(self, index: int) -> np.ndarray:
        """RGB float32 `[H, W, 3]` in 0-1, RGBA composited on the scene's background."""
        pixels = read_image(self.image_paths[index])
        self._check_size(index, pixels)
        return composite(pixels, self.background_rgb)

    def _check_size(self, index: int, pixels: np.ndarray) -> None:
        expected = (int(self.cameras.width[index]), int(self.cameras.height[index]))
        if (pixels.shape[1], pixels.shape[0]) != expected:
            raise file_error(
                self.image_paths[index],
                f"image is {pixels.shape[1]}x{pixels.shape[0]} but its camera expects {expected[0]}x{expected[1]}",
            )

    def load_rgba(self, index: int) -> np.ndarray:
        """RGBA float32 `[H, W, 4]` in 0-1, straight (not premultiplied); alpha is 1 for opaque images."""
        pixels = read_image(self.image_paths[index])
        self._check_size(index, pixels)
        rgba = pixels.astype(np.float32) / 255.0
        if rgba.shape[-1] == 3:
            rgba = np.concatenate([rgba, np.ones_like(rgba[..., :1])], -1)
        return rgba

    def check_images(self) -> None:
        """Every image exists, is readable and has its camera's size (headers only; fast)."""
        for i, path in enumerate(self.image_paths):
            size = image_size(path)
            expected = (int(self.cameras.width[i]), int(self.cameras.height[i]))
            if size != expected:
                raise file_error(
                    path, f"image is {size[0]}x{size[1]} but its camera expects {expected[0]}x{expected[1]}"
                )

    # ---- derived scenes ---------------------------------------------------------------------
    def downscaled(self, factor: int) -> Scene:
        """The scene with images `factor` times smaller, cached in `ROOT/images_{N}/` where N is the factor from the
        folder's own images (a scene already downscaled by 4, downscaled by 2, is made from the full-size images
        into images_8/: a cache never holds images of another size than its name says). Every image it returns,
        held-out ones too, has its camera's size: a cached copy is checked when it is reused, else written."""
        if factor == 1:
            return self
        cameras = self.cameras.downscaled(factor)
        total = self.downscale * factor
        cache = self.root / f"images_{total}"
        sources = self.full_size_paths or self.image_paths
        try:
            paths = [
                downscaled_image(path, cache / name, (int(w), int(h)))
                for path, name, w, h in zip(sources, self.image_names, cameras.width, cameras.height)
            ]
        except OSError as e:
            raise SpatialError(f"{cache}: cannot write the images downscaled by {factor} there ({e.strerror or e}); "
                               "make the scene folder writable or copy it, or train at full size with --downscale 1"
                               ) from None
        return replace(self, cameras=cameras, image_paths=paths, image_root=cache, downscale=total,
                       full_size_paths=list(sources))

    def cache_downscaled(self, factors: tuple[int, ...] = (2, 4, 8)) -> None:
        """Write the `images_N` copies that nerfstudio and gsplat look for, for each factor."""
        for factor in factors:
            self.downscaled(factor)

    def normalized(self) -> Scene:
        """The scene in a world frame that puts it upright, centred and of unit size.

        +z is the mean camera up direction, the origin is the point nearest to all optical axes
        (the camera centres' mean when the axes are near parallel, as in a forward-facing capture),
        and camera centres lie within distance 1. `world_from_source` keeps the similarity, so
        results can be taken back to the source frame.
        """
        T = normalizing_transform(self.cameras.cam_to_world.double()).float()
        return replace(
            self,
            cameras=replace(self.cameras, cam_to_world=apply_to_cam_to_world(T, self.cameras.cam_to_world)),
            points=apply_to_points(T, self.points),
            world_from_source=T @ self.world_from_source,
        )

    def subset(self, ids: list[int]) -> Scene:
        """The cameras `ids`, all of them in the training split."""
        return replace(
            self, cameras=self.cameras[ids], image_paths=[self.image_paths[i] for i in ids],
            full_size_paths=None if self.full_size_paths is None else [self.full_size_paths[i] for i in ids],
            train_ids=list(range(len(ids))), test_ids=[],
            exposures=None if self.exposures is None else self.exposures[ids],
            point_views=None if self.point_views is None else _views_of(self.point_views, ids, len(self.cameras)),
        )


def _views_of(views: Tensor, ids: list[int], count: int) -> Tensor:
    """The (camera, point) pairs `[N, 2]` of cameras `ids`, renumbered as the subset numbers them."""
    new_index = torch.full((count,), -1, dtype=torch.int64, device=views.device)
    new_index[torch.tensor(ids, dtype=torch.int64, device=views.device)] = torch.arange(len(ids), device=views.device)
    kept = views[new_index[views[:, 0]] >= 0]
    return torch.stack([new_index[kept[:, 0]], kept[:, 1]], -1)


def every_nth_split(count: int, test_every: int = DEFAULT_TEST_EVERY) -> tuple[list[int], list[int]]:
    """Train and test ids holding out every `test_every`-th image (none when `test_every` is 0)."""
    if test_every <= 0 or count < 2:
        return list(range(count)), []
    test = list(range(0, count, test_every))
    return [i for i in range(count) if i % test_every != 0], test


def normalizing_transform(cam_to_world: Tensor) -> Tensor:
    """Similarity `[4, 4]` (float64) used by `Scene.normalized`."""
    centers = cam_to_world[:, :3, 3]  # [C, 3]
    up = -cam_to_world[:, :3, 1].mean(dim=0)  # OpenCV: image up is -y
    up = up / torch.linalg.norm(up).clamp_min(1e-12)
    R = rotation_between(up, torch.tensor([0.0, 0.0, 1.0], dtype=up.dtype, device=up.device))

    # The point nearest to every optical axis: sum_i (I - d d^T)(x - c_i) = 0.
    d = torch.nn.functional.normalize(cam_to_world[:, :3, 2], dim=-1)
    P = torch.eye(3, dtype=d.dtype) - d[:, :, None] * d[:, None, :]  # [C, 3, 3]
    A, b = P.sum(0), (P @ centers[:, :, None]).sum(0)[:, 0]
    focus = centers.mean(dim=0)
    if len(centers) > 1 and torch.linalg.cond(A) < 1e4:
        candidate = torch.linalg.solve(A, b)
        # Trust the focus only when it is in front of the cameras and not absurdly far.
        spread = torch.linalg.norm(centers - centers.mean(0), dim=-1).max()
        in_front = ((candidate - centers) * d).sum(-1).mean() > 0
        if in_front and torch.linalg.norm(candidate - centers.mean(0)) < 10 * spread.clamp_min(1e-9):
            focus = candidate
    radius = torch.linalg.norm(centers - focus, dim=-1).max().clamp_min(1e-9)
    scale = 1.0 / radius
    T = torch.eye(4, dtype=cam_to_world.dtype)
    T[:3, :3] = scale * R
    T[:3, 3] = -scale * (R @ focus)
    return T


def world_radius(centers: Tensor, points: Tensor, covered: float = 0.9) -> float:
    """`Scene.world_radius` of cameras at `centers` `[C, 3]` and points `[P, 3]` (sparse points, or splat centres)."""
    center = centers.float().mean(dim=0)  # [3]
    radius = max(float(torch.linalg.norm(centers.float() - center, dim=-1).max()), 1e-6)
    if points.shape[0] >= 10:
        distances = torch.linalg.norm(points.float() - center.to(points.device), dim=-1)  # [P]
        radius = max(radius, float(distances.sort().values[int(covered * (len(distances) - 1))]))
    return radius
