"""A collision mesh: a closed surface around what is solid in a world, under a triangle budget.

    collider = make_collider(views, cameras, ColliderConfig(max_triangles=150_000))   # spatial.mesh.fusion views
    collider.mesh.to_trimesh().is_watertight                                          # True

From the world's renders at its training cameras, fused into a TSDF (spatial/mesh/fusion.py), each voxel is
one of: seen empty (in front of a surface), a surface (within `thickness` voxels behind the surface the cameras
saw: a floor or a wall seen from one side becomes a slab that thick), or unseen. Then:
1. holes in the surfaces up to twice `close_voxels` voxels across are closed (unseen voxels with surface on both
   sides along an axis);
2. what the surfaces enclose is filled: every voxel not seen empty that no path of non-solid voxels joins to
   the outside of the box (the inside of a statue, the space under a box on the floor) becomes solid, while the
   air of a room the cameras stood in, seen empty, stays empty;
3. solid pieces smaller than `min_size` (a share of the world's extent) are dropped: floaters;
4. marching cubes on a signed field that is the fused signed distance at the seen surfaces (so the collider
   lies where the renders put the surface, to a fraction of a voxel) and +-1 elsewhere, in a box padded with
   empty voxels, which makes the surface closed.
The voxel size starts at the extent / `resolution` and grows until the mesh fits `max_triangles`. `voxels` is
the solid itself, for engines that collide with voxels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.errors import SpatialError
from spatial.files import atomic_path
from spatial.mesh.files import Mesh
from spatial.mesh.fusion import FusionConfig, fuse
from spatial.scene import world_radius


@dataclass
class ColliderConfig:
    max_triangles: int = 150_000
    """The most triangles the collider may have; the voxels grow until it fits."""
    resolution: int = 256
    """Voxels along the longest side of the world at first (fewer when the budget asks for it)."""
    thickness: float = 3.0
    """Voxels of solid behind a surface seen from one side only (a floor, a wall), measured along the cameras' rays
    as the fused distance is: a floor seen at a slant is thinner than this across, and at 1.5 a third of the
    default scene's floor had holes through it."""
    close_voxels: int = 14
    """Holes in surfaces up to twice this many voxels across are closed (unseen space only: the floor hidden under
    an object resting on it, a patch no camera saw)."""
    min_size: float = 0.02
    """Solid pieces whose box is smaller than this share of the world's extent are dropped (floaters)."""
    min_alpha: float = 0.5
    """Pixels whose accumulated opacity is below this are empty."""
    reach: float = 1.5
    """The collider reaches at most this many world radii from the cameras' centre along each axis (the world radius
    holds the cameras and 90% of the sparse points or splats: `spatial.scene.world_radius`): a capture's far trees
    and sky are left out, so that the voxels stay small where people walk. 0: all that the renders see."""
    voxels: float | None = None
    """Voxels of this size in scene units instead of --resolution (the budget is then not met by growing them),
    and `spatial export collider` also writes the solid as a voxel grid beside the mesh (OUT with .binvox, which
    binvox tools, trimesh and many engines' importers read)."""


@dataclass
class Collider:
    mesh: Mesh  # closed, in world coordinates; vertex colours from the renders
    solid: np.ndarray  # [X, Y, Z] bool: voxel (i, j, k) is solid
    origin: np.ndarray  # [3] world position of voxel (0, 0, 0)'s centre
    voxel_size: float  # world units per voxel


def make_collider(views: list[tuple[Tensor, Tensor, Tensor]], cameras: Cameras,
                  config: ColliderConfig | None = None, points: Tensor | None = None) -> Collider:
    """The collider of a world from its renders (`spatial.mesh.fusion.rendered_views`) at `cameras`, within
    `config.reach` world radii of the cameras as measured with `points` `[P, 3]` (the scene's sparse points or the
    splats' centres; without them, all that the renders see)."""
    config = config or ColliderConfig()
    within = None
    if config.reach > 0 and points is not None:
        centers = cameras.centers.detach().cpu()
        within = (centers.float().mean(0), config.reach * world_radius(centers, points.detach().cpu()))
    resolution = config.resolution
    while True:
        fusion = FusionConfig(resolution=resolution, trunc_voxels=max(4.0, config.thickness + 2),
                              min_alpha=config.min_alpha, voxel_size=config.voxels)
        volume = fuse(views, cameras, fusion, within=within)
        collider = _collider(volume, config)
        if len(collider.mesh.faces) <= config.max_triangles or resolution <= 16 or config.voxels:
            break
        # triangles grow with the square of the resolution
        resolution = max(16, int(resolution * min(0.9, (config.max_triangles / len(collider.mesh.faces)) ** 0.5)))
    if len(collider.mesh.faces) > config.max_triangles:
        raise SpatialError(f"the collider has {len(collider.mesh.faces):,} triangles with voxels of "
                           f"{collider.voxel_size:.4g} scene units, above --max-triangles {config.max_triangles:,}; "
                           "allow more triangles" + (" or choose larger --voxels" if config.voxels else ""))
    return collider


def save_collider(collider: Collider, path: Path, turn: np.ndarray, binvox: bool = False) -> None:
    """Write the collider's mesh to `path` (.glb) with its vertices turned by `turn` `[3, 3]` (our axes to the
    file's), and with `binvox` the solid beside it (.binvox, in the same frame: voxel centres turned alike)."""
    import trimesh

    mesh = collider.mesh.to_trimesh()
    mesh.vertices = np.asarray(mesh.vertices) @ turn.T
    if np.linalg.det(turn) < 0:
        mesh.invert()
    scene = trimesh.Scene(mesh)
    scene.metadata["extras"] = {"generator": "spatial export collider", "units": "scene units",
                                "collider": True, "voxel_size": collider.voxel_size}
    data = scene.export(file_type="glb")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    if binvox:
        _save_binvox(collider, path.with_suffix(".binvox"), turn)


def grid_turnable(turn: np.ndarray) -> bool:
    """Whether `turn` `[3, 3]` only permutes and flips axes, so that a voxel grid stays a grid."""
    return bool(np.allclose(np.abs(turn), np.eye(3)[np.abs(turn).argmax(1)], atol=1e-9))


def _save_binvox(collider: Collider, path: Path, turn: np.ndarray) -> None:
    """The solid as a binvox file: voxel centres at translate + (index + 0.5) * scale / dim, in the turned frame.
    Only turns that permute and flip axes keep a grid a grid (the default 180 degrees about z)."""
    solid = collider.solid
    if not grid_turnable(turn):
        raise SpatialError("a voxel grid cannot be turned by other than quarter turns")
    axes = np.abs(turn).argmax(1)  # file axis a takes our axis axes[a]
    grid = solid.transpose(axes)
    for a in range(3):
        if turn[a, axes[a]] < 0:
            grid = grid[::-1] if a == 0 else (grid[:, ::-1] if a == 1 else grid[:, :, ::-1])
    size = collider.voxel_size
    corner_ours = collider.origin - size / 2  # the low corner of voxel (0, 0, 0)
    far_ours = corner_ours + np.array(solid.shape) * size
    low = np.minimum(turn @ corner_ours, turn @ far_ours)
    dim = max(grid.shape)
    padded = np.zeros((dim, dim, dim), bool)
    padded[:grid.shape[0], :grid.shape[1], :grid.shape[2]] = grid
    values = padded.transpose(0, 2, 1).reshape(-1)  # binvox: x slowest, then z, then y fastest
    change = np.flatnonzero(np.diff(values.astype(np.int8))) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(values)]]))
    runs = bytearray()
    for start, length in zip(starts.tolist(), lengths.tolist()):
        while length > 0:
            step = min(length, 255)
            runs += bytes([int(values[start]), step])
            length -= step
    header = (f"#binvox 1\ndim {dim} {dim} {dim}\ntranslate {low[0]:.9g} {low[1]:.9g} {low[2]:.9g}\n"
              f"scale {dim * size:.9g}\ndata\n").encode()
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + bytes(runs))


def _collider(volume, config: ColliderConfig) -> Collider:
    from scipy import ndimage
    from skimage.measure import marching_cubes

    shape = volume.shape
    trunc_voxels = volume.trunc / volume.voxel_size
    seen = (volume.weight.reshape(shape) > 0).numpy()
    sdf = (volume.tsdf.reshape(shape) * trunc_voxels).numpy()  # voxels from the surface, + in front
    surface = seen & (sdf <= 0) & (sdf > -config.thickness)
    empty = seen & (sdf > 0)
    if not surface.any():
        raise SpatialError("no surface found: the renders are empty or the model is transparent")
    solid = surface | (_gaps(surface, config.close_voxels) & ~empty)
    # fill what the solid encloses: the non-solid voxels not joined to the outside of the (padded) box
    outside, _ = ndimage.label(np.pad(~solid, 1, constant_values=True))  # 6-connected
    enclosed = (outside != outside[0, 0, 0])[1:-1, 1:-1, 1:-1] & ~solid & ~empty
    solid |= enclosed
    # floaters: solid pieces (26-connected) with a small box
    pieces, count = ndimage.label(solid, structure=np.ones((3, 3, 3)))
    extent = max(shape)
    for index, box in enumerate(ndimage.find_objects(pieces), start=1):
        if box is not None and max(b.stop - b.start for b in box) < config.min_size * extent:
            solid[box][pieces[box] == index] = False
    # the field: the fused distance where a seen surface bounds the solid, +-1 voxel elsewhere
    field = np.where(solid, -1.0, 1.0)
    at_surface = surface & solid
    field[at_surface] = np.maximum(sdf[at_surface], -(sdf[at_surface] + config.thickness))
    front = empty & ndimage.binary_dilation(solid)
    field[front] = np.minimum(sdf[front], 1.0)
    field = np.pad(field, 1, constant_values=1.0)
    if field.min() >= 0:
        raise SpatialError("no solid left after dropping floaters; lower --min-size")
    field[field == 0] = 1e-4  # no vertex exactly on a voxel: no triangle of zero area
    _no_checkerboards(field)
    # degenerate triangles are kept: dropping them would open the surface where they were
    verts, faces, _, _ = marching_cubes(field, level=0.0, allow_degenerate=True)
    verts -= 1  # the padding
    colours = _colours(volume, verts)
    world = volume.origin.numpy() + verts * volume.voxel_size
    mesh = Mesh(world.astype(np.float32), faces.astype(np.int64), colours)
    tm = mesh.to_trimesh()
    if tm.volume < 0:  # faces wound inwards: turn them out
        mesh.faces = mesh.faces[:, ::-1].copy()
    return Collider(mesh, solid, volume.origin.numpy(), volume.voxel_size)


def _no_checkerboards(field: np.ndarray, rounds: int = 10) -> None:
    """Make solid (in place) an empty corner of every square of four voxels whose solid corners touch only across
    the diagonal: marching cubes gives two sheets sharing an edge there, and a surface with such an edge is not
    closed (each edge of a closed surface belongs to two triangles)."""
    for _ in range(rounds):
        found = False
        for a, b in ((0, 1), (0, 2), (1, 2)):
            inside = field < 0
            lo = [slice(None)] * 3
            s = {}
            for da in (0, 1):
                for db in (0, 1):
                    index = list(lo)
                    index[a] = slice(da, inside.shape[a] - 1 + da)
                    index[b] = slice(db, inside.shape[b] - 1 + db)
                    s[da, db] = tuple(index)
            first = inside[s[0, 0]] & inside[s[1, 1]] & ~inside[s[0, 1]] & ~inside[s[1, 0]]
            second = inside[s[0, 1]] & inside[s[1, 0]] & ~inside[s[0, 0]] & ~inside[s[1, 1]]
            if first.any() or second.any():
                found = True
                field[s[0, 1]][first] = -1e-3
                field[s[0, 0]][second] = -1e-3
        if not found:
            return


def _gaps(solid: np.ndarray, reach: int) -> np.ndarray:
    """`[X, Y, Z]` the voxels with solid on both sides along some axis within `reach` voxels: holes in a surface
    (a morphological closing would reopen them in a surface thinner than the hole, and thicken it elsewhere)."""
    gaps = np.zeros_like(solid)
    for axis in range(3):
        ahead, behind = np.zeros_like(solid), np.zeros_like(solid)
        for step in range(1, reach + 1):
            ahead |= _shifted(solid, axis, -step)  # solid `step` voxels further along the axis
            behind |= _shifted(solid, axis, step)
        gaps |= ahead & behind
    return gaps


def _shifted(grid: np.ndarray, axis: int, step: int) -> np.ndarray:
    """`grid` moved `step` voxels along `axis` (what was at i is now at i + step), False where nothing came."""
    out = np.zeros_like(grid)
    n = grid.shape[axis]
    if abs(step) >= n:
        return out
    source = [slice(None)] * 3
    target = [slice(None)] * 3
    source[axis] = slice(max(0, -step), n - max(0, step))
    target[axis] = slice(max(0, step), n - max(0, -step))
    out[tuple(target)] = grid[tuple(source)]
    return out


def _colours(volume, verts: np.ndarray) -> np.ndarray:
    """Colour at each vertex from the nearest voxel that saw one."""
    ijk = np.clip(np.round(verts).astype(np.int64), 0, np.array(volume.shape) - 1)
    X, Y, Z = volume.shape
    flat = torch.from_numpy(ijk[:, 0] * Y * Z + ijk[:, 1] * Z + ijk[:, 2])
    return volume.color[flat].clamp(0, 1).numpy().astype(np.float32)
