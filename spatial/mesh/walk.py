"""Walking through a world: a first-person camera at eye height that a collider's solid stops.

    walker = Walker(collider, up, eye_height=0.3)
    position = walker.place(position)              # onto the floor below, at eye height, out of any wall
    position = walker.step(position, wanted)       # towards `wanted` until something is in the way

The walker moves level (along the floor, whatever the wanted point's height), in steps of half a voxel: a step
is taken when the eye keeps `radius` clear of every solid voxel (a distance field of the solid,
spatial/mesh/collider.py's `Collider.solid`, made once) and the floor under it rises or falls by at most
`climb`; along a wall it slides (the part of the step into the wall is dropped). Its height follows the floor:
`eye_height` above the first solid below it. With no floor below (beyond the world's edge) it keeps its height.
Positions are in world coordinates, numpy `[3]` float64.
"""

from __future__ import annotations

import functools

import numpy as np

from spatial.mesh.collider import Collider


class Walker:
    def __init__(self, collider: Collider, up: np.ndarray, eye_height: float, radius: float | None = None,
                 climb: float | None = None):
        self.solid, self.origin, self.voxel = collider.solid, np.asarray(collider.origin, float), collider.voxel_size
        self.up = np.asarray(up, float) / np.linalg.norm(up)
        self.eye_height = float(eye_height)
        # clear of the solid voxels' centres by the radius, a voxel more for the surface between them
        self.radius = float(radius if radius is not None else 0.25 * eye_height)
        self.climb = float(climb if climb is not None else 0.3 * eye_height)
        self.axis = int(np.abs(self.up).argmax())  # the voxel axis nearest to up, along which floors are found
        self.sign = 1 if self.up[self.axis] > 0 else -1

    @functools.cached_property
    def clear(self) -> np.ndarray:
        """`[X, Y, Z]` distance (world units) from each voxel centre to the nearest solid voxel centre; made on the
        first move, so a walker asked only for floors (`eye_height_of`) costs no distance transform."""
        from scipy import ndimage

        return ndimage.distance_transform_edt(~self.solid) * self.voxel

    # ---- queries --------------------------------------------------------------------------------------------
    def clearance(self, point: np.ndarray) -> float:
        """Distance from `point` to the solid, less a voxel (the surface lies between voxel centres)."""
        ijk = np.round((np.asarray(point) - self.origin) / self.voxel).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= self.solid.shape):
            return np.inf  # beyond the world's box nothing is solid
        return float(self.clear[tuple(ijk)]) - self.voxel

    def floor(self, point: np.ndarray) -> float | None:
        """Height (along up, world units from the origin) of the top of the solid below `point`, or None."""
        ijk = np.round((np.asarray(point) - self.origin) / self.voxel).astype(int)
        others = [a for a in range(3) if a != self.axis]
        if any(ijk[a] < 0 or ijk[a] >= self.solid.shape[a] for a in others):
            return None
        index = [int(ijk[0]), int(ijk[1]), int(ijk[2])]
        index[self.axis] = slice(None)
        column = self.solid[tuple(index)]  # along the axis nearest to up
        at = int(np.clip(ijk[self.axis], 0, len(column) - 1))
        below = np.flatnonzero(column[:at + 1]) if self.sign > 0 else np.flatnonzero(column[at:]) + at
        if len(below) == 0:
            return None
        top = below.max() if self.sign > 0 else below.min()
        surface = self.origin.copy()
        surface[self.axis] += (top + 0.5 * self.sign) * self.voxel  # the top face of that voxel
        return float(surface @ self.up)

    # ---- moving ---------------------------------------------------------------------------------------------
    def place(self, point: np.ndarray) -> np.ndarray:
        """`point` at eye height above the floor below it, raised out of any solid it is in."""
        p = np.asarray(point, float).copy()
        for _ in range(int(np.ceil(self.solid.shape[self.axis] * 1.5))):  # out of the solid, upwards
            if self.clearance(p) >= self.radius:
                break
            p = p + self.up * 0.5 * self.voxel
        floor = self.floor(p)
        if floor is not None:
            p = p + self.up * (floor + self.eye_height - p @ self.up)
            while self.clearance(p) < self.radius:  # a low ceiling: crouch as far as the radius allows
                p = p - self.up * 0.5 * self.voxel
                if p @ self.up < floor + self.radius:
                    break
        return p

    def step(self, position: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        """From `position` (where the walker is, at eye height) towards `wanted`, level, as far as it can go."""
        p = np.asarray(position, float).copy()
        move = np.asarray(wanted, float) - p
        move -= (move @ self.up) * self.up  # level: walking, not flying
        length = float(np.linalg.norm(move))
        if length < 1e-12:
            return p
        direction = move / length
        left = length
        while left > 1e-12:
            d = direction * min(left, 0.5 * self.voxel)
            nxt = self._try(p, d)
            if nxt is None:  # blocked: slide along the wall, the part of the step into it dropped
                normal = self._wall_normal(p + d)
                for slide in ([] if normal is None else [d - min(0.0, float(d @ normal)) * normal]) + self._parts(d):
                    nxt = self._try(p, slide - (slide @ self.up) * self.up)
                    if nxt is not None:
                        break
                if nxt is None:
                    break
            left -= float(np.linalg.norm(d))
            p = nxt
        return p

    def _try(self, p: np.ndarray, d: np.ndarray) -> np.ndarray | None:
        """`p` moved by `d` and set at eye height over the floor there, or None if the eye or the climb is
        blocked."""
        if float(np.linalg.norm(d)) < 1e-12:
            return None
        q = p + d
        here, there = self.floor(p), self.floor(q)
        if there is not None:
            if here is not None and abs(there - here) > self.climb:
                return None  # a wall or a drop, not a step
            q = q + self.up * (there + self.eye_height - q @ self.up)
        return q if self.clearance(q) >= self.radius else None

    def _parts(self, d: np.ndarray) -> list[np.ndarray]:
        """`d` split along the two level voxel axes, larger first: at a corner, where no single slide is free."""
        parts = [d[a] * np.eye(3)[a] for a in range(3) if a != self.axis]
        return sorted(parts, key=lambda v: -float(np.linalg.norm(v)))

    def _wall_normal(self, point: np.ndarray) -> np.ndarray | None:
        """The level direction in which the solid's distance grows at `point` (away from the wall)."""
        h = self.voxel
        grad = np.array([self.clearance(point + h * e) - self.clearance(point - h * e) for e in np.eye(3)])
        grad[~np.isfinite(grad)] = 0
        grad -= (grad @ self.up) * self.up
        norm = float(np.linalg.norm(grad))
        return grad / norm if norm > 1e-12 else None


def eye_height_of(positions: np.ndarray, walker: Walker) -> float | None:
    """The median height of cameras at `positions` `[C, 3]` above the floor below them (phone captures are taken at
    eye height), or None when no camera has a floor below it."""
    heights = [float(p @ walker.up) - f for p in positions
               if (f := walker.floor(p)) is not None and float(p @ walker.up) > f]
    return float(np.median(heights)) if heights else None
