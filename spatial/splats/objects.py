"""A world's objects from its splats alone: the large planes it stands on, then what is left in separate pieces.

    labels = segment(params)                      # [N] int64 object id of every Gaussian (planes first)
    mask = labels == labels[picked_index]         # the object under a click

No learned weights (none can be downloaded here), and no photos: what a trained world knows is where its opaque
Gaussians are. Objects in captured worlds mostly stand on a floor or against a wall, and touch nothing else, so:
1. the Gaussians that matter are the opaque ones (`min_opacity`); their spacing, the median distance from one to
   its nearest neighbour, is the unit every distance below is measured in, so the method does not depend on the
   scene's units or how densely it was trained;
2. planes that hold a large share of them (`plane_share`: a floor, a wall, a table top) are found by RANSAC and
   refitted by least squares, each one object: the Gaussians within `plane_distance` spacings of it;
3. the rest are joined to their neighbours within `link` spacings, and each connected piece is an object (the
   floor gone, a box and the ball beside it fall apart);
4. pieces of fewer opaque Gaussians than `min_share` of them, or than `min_count` in a big world (floaters, a
   stray patch: a few to a hundred Gaussians in the built-in scenes, their objects a thousand and more) join the
   object of the nearest Gaussian in a larger one, and the translucent Gaussians join the object of the nearest
   opaque one.
It is good at objects separated by space once the large planes are out (things on a floor, on a table, in front
of a wall); it cannot part objects that touch each other (a cup on a saucer, a person leaning on a car) or tell
apart what shares one plane (a poster on a wall is the wall).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from spatial.transforms import quat_to_rotmat


@dataclass
class ObjectsConfig:
    min_opacity: float = 0.3
    """Gaussians at least this opaque make the objects' shapes; fainter ones join the nearest object."""
    plane_share: float = 0.15
    """A plane is an object of its own (the floor, a wall) when it holds this share of the opaque Gaussians."""
    max_planes: int = 4
    """The most planes taken out."""
    plane_distance: float = 3.0
    """Gaussians within this many spacings of a plane belong to it."""
    link: float = 8.0
    """Gaussians within this many spacings of each other are in the same object (once the planes are out)."""
    min_share: float = 0.005
    """Pieces with fewer than this share of the opaque Gaussians join the nearest larger object (floaters)..."""
    min_count: int = 500
    """... or with fewer than this many, if that is fewer: in a world of millions, a thing of a thousand Gaussians
    is still an object (a share alone would merge it into its neighbour)."""
    facing_up: float = 0.8
    """Where no large plane is found (uneven ground: grass, leaves, rock), a flat Gaussian whose normal is within
    acos(this) of up faces up, and facing up or not is a boundary: the ground and what stands on it fall apart."""
    flat: float = 2.7
    """A Gaussian is flat when its largest scale is at least this many times its smallest."""
    tries: int = 300
    """RANSAC's tries per plane."""
    seed: int = 0
    """RANSAC's random seed: the same world gives the same objects."""


UP = (0.0, -1.0, 0.0)  # the worlds' up: -y, OpenCV's convention, as `spatial process` and the 3DGS tools orient them


def segment(params: dict[str, Tensor], config: ObjectsConfig | None = None, up=UP) -> Tensor:
    """`[N]` int64 object id of every Gaussian of raw parameters `params` (on the CPU; `means` and `opacities`, and
    `quats` and `scales` for the ground rule): the planes first, then the other objects from the largest; -1 for all
    when there are fewer than 4 opaque Gaussians. `up` [3]: the world's up direction."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    config = config or ObjectsConfig()
    means = params["means"].detach().cpu().double().numpy()  # [N, 3]
    opaque = np.nonzero(torch.sigmoid(params["opacities"].detach().cpu()).numpy() >= config.min_opacity)[0]
    if len(opaque) < 4:
        return torch.full((len(means),), -1, dtype=torch.int64, device="cpu")
    points = means[opaque]  # [M, 3]
    tree = cKDTree(points)
    spacing = max(float(np.median(tree.query(points, k=2)[0][:, 1])), 1e-12)
    labels = np.full(len(points), -1, dtype=np.int64)
    rng = np.random.default_rng(config.seed)
    planes = 0
    for _ in range(config.max_planes):
        left = np.nonzero(labels < 0)[0]
        inliers = _plane(points[left], config.plane_distance * spacing, config.tries, rng)
        if inliers is None or inliers.sum() < config.plane_share * len(points):
            break
        labels[left[inliers]] = planes
        planes += 1
    # the rest: pieces joined within `link` spacings (the 16 nearest neighbours within it: enough to connect a
    # surface, and a bounded number of pairs however dense the world)
    left = np.nonzero(labels < 0)[0]
    if len(left):
        k = min(16, len(left) - 1)
        pieces = np.zeros(len(left), dtype=np.int64)
        if k > 0:
            _, neighbour = cKDTree(points[left]).query(points[left], k=k + 1,
                                                       distance_upper_bound=config.link * spacing)
            a = np.repeat(np.arange(len(left)), k)
            b = neighbour[:, 1:].reshape(-1)
            near = b < len(left)
            if planes == 0 and "quats" in params and "scales" in params:  # uneven ground: see _standing_apart
                pieces = _standing_apart(a, b, near, _facing_up(params, opaque[left], up, config),
                                         min(config.min_share * len(points), config.min_count))
            else:
                graph = coo_matrix((np.ones(int(near.sum())), (a[near], b[near])), shape=(len(left), len(left)))
                _, pieces = connected_components(graph, directed=False)
        sizes = np.bincount(pieces)
        order = np.argsort(-sizes, kind="stable")  # the largest piece first
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        labels[left] = planes + rank[pieces]
    # small pieces join the nearest Gaussian of a large object (planes are large by construction)
    large = np.bincount(labels) >= min(config.min_share * len(points), config.min_count)
    if large.any() and not large.all():
        big = np.nonzero(large[labels])[0]
        small = np.nonzero(~large[labels])[0]
        labels[small] = labels[big][cKDTree(points[big]).query(points[small])[1]]
    labels = np.unique(labels, return_inverse=True)[1].reshape(-1)  # ids 0.. without gaps, in the same order
    out = labels[tree.query(means)[1]]  # every Gaussian: the object of its nearest opaque one
    out[opaque] = labels
    return torch.from_numpy(out.astype(np.int64))


def _standing_apart(a: np.ndarray, b: np.ndarray, near: np.ndarray, facing: np.ndarray, large: float) -> np.ndarray:
    """Pieces `[M]` of M Gaussians linked by the pairs `a`, `b` (where `near`), in a world with no plane to stand on:
    1. pieces are linked within one kind only, facing up (`facing` [M]: the ground, ledges) or not (what stands);
    2. the pieces of standing Gaussians holding at least `large` of them are objects;
    3. a smaller piece, or one facing up, joins the object that holds at least half of its links to other pieces
       (a patch of bark facing up on a trunk; repeated, so that patches within patches join too);
    4. what is left is one piece, the surroundings (the ground with its litter, the plants around).
    Returns piece ids, 0 for the surroundings when there is any."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    M = len(facing)
    b = np.minimum(b, M - 1)
    same = near & (facing[a] == facing[b])
    _, piece = connected_components(coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(M, M)),
                                    directed=False)
    sizes = np.bincount(piece)
    standing = np.bincount(piece, weights=~facing, minlength=len(sizes)) > 0
    owner = np.where((sizes >= large) & standing, np.arange(len(sizes)), -1)  # piece -> object (a piece id), or -1
    across = near & (piece[a] != piece[b])
    src, dst = piece[a[across]], piece[b[across]]  # links between pieces
    outside = np.bincount(src, minlength=len(sizes))
    for _ in range(20):
        open_link = (owner[src] < 0) & (owner[dst] >= 0)
        if not open_link.any():
            break
        pair, count = np.unique(src[open_link] * len(sizes) + owner[dst[open_link]], return_counts=True)
        first = np.lexsort((-count, pair // len(sizes)))  # per piece, its most linked object first
        pair, count = pair[first], count[first]
        lead = np.r_[True, pair[1:] // len(sizes) != pair[:-1] // len(sizes)]
        joins = lead & (2 * count >= outside[pair // len(sizes)])
        if not joins.any():
            break
        owner[pair[joins] // len(sizes)] = pair[joins] % len(sizes)
    result = owner[piece] + 1  # 0: the surroundings
    return np.unique(result, return_inverse=True)[1].reshape(-1)


def _facing_up(params: dict[str, Tensor], index: np.ndarray, up, config: ObjectsConfig) -> np.ndarray:
    """`[len(index)]` bool: the Gaussians `index` that are flat and whose normal (the axis of the smallest scale)
    is within acos(config.facing_up) of `up`, either way."""
    index = torch.from_numpy(index)
    rotation = quat_to_rotmat(params["quats"].detach().cpu().double()[index])  # [M, 3, 3], columns the axes
    log_scales = params["scales"].detach().cpu().double()[index]  # [M, 3]
    normal = rotation[torch.arange(len(index), device="cpu"), :, log_scales.argmin(-1)]  # [M, 3]
    flat = (log_scales.max(-1).values - log_scales.min(-1).values) >= np.log(config.flat)
    facing = (normal @ torch.tensor(up, dtype=torch.float64, device="cpu")).abs() >= config.facing_up
    return (flat & facing).numpy()


def _plane(points: np.ndarray, distance: float, tries: int, rng: np.random.Generator) -> np.ndarray | None:
    """`[M]` bool: the points within `distance` of the plane through most of `points` `[M, 3]` (RANSAC over
    a sample of at most 20,000 of them, then a least-squares refit on all of its inliers); None if M < 3."""
    if len(points) < 3:
        return None
    sample = points if len(points) <= 20_000 else points[rng.choice(len(points), 20_000, replace=False)]
    best, best_count = None, -1
    for _ in range(tries):
        a, b, c = sample[rng.choice(len(sample), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        length = np.linalg.norm(normal)
        if length < 1e-12:
            continue
        normal /= length
        count = int((np.abs((sample - a) @ normal) < distance).sum())
        if count > best_count:
            best, best_count = (a, normal), count
    if best is None:
        return None
    inliers = np.abs((points - best[0]) @ best[1]) < distance
    centre = points[inliers].mean(0)
    normal = np.linalg.svd(points[inliers] - centre, full_matrices=False)[2][2]
    return np.abs((points - centre) @ normal) < distance
