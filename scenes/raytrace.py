"""A small ray tracer for the built-in scenes: textured spheres, boxes and rectangles, one sun.

It is exact where the tests need exactness (depth, normals and surface distances are analytic)
and deterministic (no random sampling: supersampling uses a regular sub-pixel grid).
Lighting is Lambertian with hard shadows, so colours do not depend on the viewing direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-5
INF = float("inf")


@dataclass
class Material:
    texture: Tensor  # [3, Ht, Wt] float in 0-1
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    tiles: float = 1.0  # texture repeats across the surface this many times per side

    def albedo(self, uv: Tensor) -> Tensor:
        """Colours `[N, 3]` at texture coordinates `uv [N, 2]` (wrapped), bilinear."""
        grid = (torch.remainder(uv * self.tiles, 1.0) * 2 - 1).reshape(1, 1, -1, 2)
        rgb = F.grid_sample(self.texture[None], grid.to(self.texture.dtype), mode="bilinear",
                            padding_mode="border", align_corners=False)
        return (rgb[0, :, 0].T * torch.tensor(self.tint, dtype=rgb.dtype)).to(uv.dtype)


@dataclass
class Sphere:
    center: tuple[float, float, float]
    radius: float
    material: Material

    def intersect(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Ray distances `[N]` (inf = miss), outward normals `[N, 3]`, texture coordinates `[N, 2]`."""
        c = torch.tensor(self.center, dtype=o.dtype)
        oc = o - c
        b = (oc * d).sum(-1)
        disc = b * b - ((oc * oc).sum(-1) - self.radius**2)
        sq = torch.sqrt(disc.clamp_min(0))
        t = torch.where(-b - sq > EPS, -b - sq, -b + sq)
        t = torch.where((disc >= 0) & (t > EPS), t, torch.full_like(t, INF))
        n = (o + t.nan_to_num(posinf=0)[:, None] * d - c) / self.radius
        uv = torch.stack([0.5 + torch.atan2(n[:, 1], n[:, 0]) / (2 * math.pi),
                          torch.acos(n[:, 2].clamp(-1, 1)) / math.pi], -1)
        return t, n, uv

    def distance(self, p: Tensor) -> Tensor:
        """Unsigned distance of points `[N, 3]` to the surface."""
        return (torch.linalg.norm(p - torch.tensor(self.center, dtype=p.dtype), dim=-1) - self.radius).abs()


@dataclass
class Box:
    center: tuple[float, float, float]
    half_size: tuple[float, float, float]
    yaw_degrees: float
    material: Material

    def _frame(self, dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Rotation local -> world (about +z) `[3, 3]`, centre `[3]`, half sizes `[3]`."""
        a = math.radians(self.yaw_degrees)
        R = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]], dtype=dtype)
        return R, torch.tensor(self.center, dtype=dtype), torch.tensor(self.half_size, dtype=dtype)

    def intersect(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        R, c, h = self._frame(o.dtype)
        ol, dl = (o - c) @ R, d @ R  # ray in the box frame
        dl = torch.where(dl.abs() < 1e-12, torch.full_like(dl, 1e-12), dl)
        t1, t2 = (-h - ol) / dl, (h - ol) / dl
        tnear, tfar = torch.minimum(t1, t2), torch.maximum(t1, t2)
        t_enter, axis = tnear.max(dim=-1)
        t_exit = tfar.min(dim=-1).values
        hit = (t_exit >= t_enter) & (t_enter > EPS)
        t = torch.where(hit, t_enter, torch.full_like(t_enter, INF))
        n_local = torch.zeros_like(ol)
        n_local.scatter_(1, axis[:, None], -torch.sign(dl.gather(1, axis[:, None])))
        p_local = ol + t.nan_to_num(posinf=0)[:, None] * dl
        q = (p_local / h + 1) / 2  # [0, 1] along each local axis
        # Texture axes per face: the two other axes, with +z up in the image.
        u = torch.where(axis == 0, q[:, 1], q[:, 0])
        v = torch.where(axis == 2, 1 - q[:, 1], 1 - q[:, 2])
        return t, n_local @ R.T, torch.stack([u, v], -1)

    def distance(self, p: Tensor) -> Tensor:
        R, c, h = self._frame(p.dtype)
        q = ((p - c) @ R).abs() - h
        outside = torch.linalg.norm(q.clamp_min(0), dim=-1)
        inside = q.max(dim=-1).values.clamp_max(0)
        return (outside + inside).abs()


@dataclass
class Rectangle:
    center: tuple[float, float, float]
    u_axis: tuple[float, float, float]  # unit vector along the texture's width
    v_axis: tuple[float, float, float]  # unit vector along the texture's height (image up)
    half_u: float
    half_v: float
    material: Material

    def intersect(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c, eu, ev = (torch.tensor(x, dtype=o.dtype) for x in (self.center, self.u_axis, self.v_axis))
        n = torch.cross(eu, ev, dim=0)
        denom = d @ n
        safe = torch.where(denom.abs() < 1e-12, torch.full_like(denom, 1e-12), denom)
        t = ((c - o) @ n) / safe
        p = o + t[:, None] * d
        a, b = (p - c) @ eu / self.half_u, (p - c) @ ev / self.half_v
        hit = (t > EPS) & (a.abs() <= 1) & (b.abs() <= 1)
        t = torch.where(hit, t, torch.full_like(t, INF))
        return t, n.expand_as(o), torch.stack([(a + 1) / 2, 1 - (b + 1) / 2], -1)

    def distance(self, p: Tensor) -> Tensor:
        c, eu, ev = (torch.tensor(x, dtype=p.dtype) for x in (self.center, self.u_axis, self.v_axis))
        q = p - c
        a = (q @ eu).clamp(-self.half_u, self.half_u)
        b = (q @ ev).clamp(-self.half_v, self.half_v)
        return torch.linalg.norm(q - a[:, None] * eu - b[:, None] * ev, dim=-1)


Primitive = Sphere | Box | Rectangle


def first_hit(prims: list[Primitive], o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Nearest hit of rays `o, d [N, 3]`: distance `[N]` (inf = miss), primitive index `[N]`,
    normal `[N, 3]` facing the ray, texture coordinates `[N, 2]`."""
    results = [p.intersect(o, d) for p in prims]
    t_all = torch.stack([r[0] for r in results])  # [P, N]
    t, index = t_all.min(dim=0)
    rows = torch.arange(o.shape[0])
    n = torch.stack([r[1] for r in results])[index, rows]
    uv = torch.stack([r[2] for r in results])[index, rows]
    n = torch.where(((n * d).sum(-1) > 0)[:, None], -n, n)  # two-sided surfaces face the viewer
    return t, index, n, uv


def shade(
    prims: list[Primitive], o: Tensor, d: Tensor, sun: Tensor, ambient: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Colour `[N, 3]`, hit mask `[N]`, distance `[N]` and normal `[N, 3]` of rays `[N, 3]`."""
    t, index, n, uv = first_hit(prims, o, d)
    hit = torch.isfinite(t)
    color = torch.zeros_like(o)
    if hit.any():
        p = o[hit] + t[hit, None] * d[hit]
        shadow_t = first_hit(prims, p + 1e-4 * n[hit], sun.expand(p.shape[0], 3))[0]
        lit = (n[hit] @ sun).clamp_min(0) * (~torch.isfinite(shadow_t)).to(o.dtype)
        albedo = torch.zeros_like(p)
        for i, prim in enumerate(prims):
            mine = index[hit] == i
            if mine.any():
                albedo[mine] = prim.material.albedo(uv[hit][mine])
        color[hit] = albedo * (ambient + (1 - ambient) * lit[:, None])
    return color, hit, t, n


def surface_distance(prims: list[Primitive], points: Tensor) -> Tensor:
    """Distance `[N]` from points `[N, 3]` to the nearest surface of the scene (exact)."""
    return torch.stack([p.distance(points) for p in prims]).min(dim=0).values
