"""What the viewer's tools do to a world, a part of `World` (see world.py): selections from a camera's picture (a
rectangle, front-most only or not), the Gaussian under a pixel and those of its colour, colour grades of the
selection or a layer, and the world's size and up from clicked points: measure-and-scale, and the ground from
three points made level."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.errors import SpatialError
from spatial.splats import screen, select
from spatial.splats.colour import ColourAdjustment, adjust_colour
from spatial.splats.transform import merge_splats

if TYPE_CHECKING:
    from spatial_viewer.world_layers import Layer


@dataclass(frozen=True)
class Pick:
    """What is under a clicked pixel: the surface point drawn there and the Gaussian nearest to it."""

    layer: str
    index: int  # of the Gaussian in its layer
    point: Tensor  # [3] world surface point


class ScreenTools:
    """`World`'s on-screen selections, colour grades, scale and up (its `layers`, `_select` and `_checkpoint` are
    World's)."""

    def select_rect(self, camera: Cameras, rect_min, rect_max, mode: str = "set", front_only: bool = False) -> int:
        """Gaussians whose centres project into the pixel rectangle `[rect_min, rect_max]` ((x, y) each) of the
        one-camera `camera`; with `front_only`, those our renderer does not draw behind a nearer surface."""
        masks = {l.name: screen.in_screen_rect(l.world_means(), camera, rect_min, rect_max)
                 for l in self.layers if l.editable}
        if front_only and any(bool(m.any()) for m in masks.values()):
            shown, drawn = self._drawn()
            candidates = torch.cat([masks[l.name] if l.name in masks else
                                    torch.zeros(l.count, dtype=torch.bool, device="cpu") for l in shown])
            front = screen.front_most(drawn, camera, candidates)
            for l, part in zip(shown, front.split([l.count for l in shown])):
                if l.name in masks:
                    masks[l.name] = part
        return self._select(masks, mode, "select on screen" + (" (front)" if front_only else ""))

    def pick(self, camera: Cameras, pixel) -> Pick | None:
        """The surface our renderer draws at `pixel` (x, y) of the one-camera `camera`, and the nearest Gaussian
        of a visible, unlocked layer to it; None where nothing is drawn."""
        shown, drawn = self._drawn()
        if not shown:
            return None
        point = screen.surface_point(drawn, camera, pixel)
        candidates = [l for l in shown if l.editable]
        if point is None or not candidates:
            return None
        nearest = []  # (distance, layer name, index) of each layer's centre nearest to the point
        for l in candidates:
            means = l.world_means()
            i = screen.nearest(means, point)
            nearest.append((float((means[i] - point).norm()), l.name, i))
        _, name, index = min(nearest)
        return Pick(name, index, point)

    def _drawn(self) -> tuple[list[Layer], dict[str, Tensor]]:
        """The visible layers (locked ones too: they hide what is behind them) and their Gaussians in world
        coordinates, one model, without the view-dependent colour (what depth renders need)."""
        shown = [l for l in self.layers if l.visible and l.count]
        parts = []
        for l in shown:
            parts.append(l.in_world({**l.params, "shN": l.params["shN"][:, :0]}))
        return shown, (merge_splats(parts) if parts else {})

    def select_pick(self, pick: Pick, mode: str = "set") -> int:
        """The picked Gaussian alone."""
        mask = torch.zeros(self.layer(pick.layer).count, dtype=torch.bool, device="cpu")
        mask[pick.index] = True
        return self._select({pick.layer: mask}, mode, "pick")

    def select_similar(self, pick: Pick, distance: float, mode: str = "set") -> int:
        """Gaussians whose base colour (RGB, 0-1) is within `distance` of the picked one's."""
        target = select.base_colour(self.layer(pick.layer).params)[pick.index]
        return self._select({l.name: (select.base_colour(l.params) - target).norm(dim=-1) <= distance
                             for l in self.layers if l.editable}, mode, "select similar colour")

    def colour_targets(self, target: str) -> dict[str, Tensor | None]:
        """Layer name -> mask (None: the whole layer) that a colour edit of `target` changes: "selection" (the
        selected Gaussians) or a layer's name."""
        if target == "selection":
            if not self.selected_count():
                raise SpatialError("nothing is selected: select Gaussians, or grade a whole layer")
            return {n: m for n, m in self.selection.items() if m.any()}
        if not self.layer(target).editable:
            raise SpatialError(f"layer {target!r} is hidden or locked: show and unlock it to change its colours")
        return {target: None}

    def colour_preview(self, adjustment: ColourAdjustment, target: str) -> dict[str, dict[str, Tensor]]:
        """Layer name -> graded parameters, for drawing before `adjust_colour` commits them (nothing changes)."""
        return self._graded(adjustment, self.colour_targets(target))

    def _graded(self, adjustment: ColourAdjustment, targets: dict[str, Tensor | None]) -> dict[str, dict]:
        return {n: adjust_colour(self.layer(n).params, adjustment, mask) for n, mask in targets.items()}

    def adjust_colour(self, adjustment: ColourAdjustment, target: str = "selection") -> int:
        """Grade the colours (every SH band) and opacities of the selection or of one layer; returns how many
        Gaussians changed."""
        targets = self.colour_targets(target)
        graded = self._graded(adjustment, targets)
        self._checkpoint("colour " + ("selection" if target == "selection" else f"layer {target}"))
        for layer in self.layers:
            if layer.name in graded:
                layer.params = graded[layer.name]
        self._changed()
        return sum(self.layer(n).count if m is None else int(m.sum()) for n, m in targets.items())

    def transform_world(self, T: Tensor, label: str, layer: str | None = None) -> None:
        """Apply the similarity `T [4, 4]` (world -> world) to every layer, or to one."""
        self._checkpoint(label)
        for l in self.layers:
            if layer is None or l.name == layer:
                l.transform = T.float() @ l.transform
        self._changed()

    def scale_to_length(self, a: Tensor, b: Tensor, length: float, layer: str | None = None) -> float:
        """Scale the world (about the origin), or one layer, so that the points `a`, `b` [3] end up `length`
        apart: a measured distance made true. Returns the factor."""
        measured = float((a.double() - b.double()).norm())
        if not (math.isfinite(length) and length > 0) or measured <= 0:
            raise SpatialError(f"cannot scale {measured:g} units to {length!r}: measure two distinct points "
                               "and type a positive length")
        factor = length / measured
        T = torch.eye(4, device="cpu")
        T[:3, :3] *= factor
        self.transform_world(T, f"scale {'world' if layer is None else layer} x{factor:.4g}", layer)
        return factor

    def set_up(self, points: Tensor, toward: Tensor) -> Tensor:
        """Turn the world about the origin so that the plane through three ground `points [3, 3]` is level:
        its normal (on the side of `toward` [3], e.g. the camera) becomes up, -y as in OpenCV's convention (what
        the 3DGS tools and SuperSplat take as up). Returns the rotation `[3, 3]`."""
        p = points.double()
        normal = torch.linalg.cross(p[1] - p[0], p[2] - p[0])
        if float(normal.norm()) < 1e-9 * float((p - p.mean(0)).norm()) ** 2 or float(normal.norm()) == 0:
            raise SpatialError("the three points lie on a line: click three points spread over the ground")
        normal = normal / normal.norm()
        if float(normal @ (toward.double() - p[0])) < 0:
            normal = -normal
        up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64, device="cpu")
        R = _rotation_between(normal, up)
        T = torch.eye(4, device="cpu")
        T[:3, :3] = R.float()
        self.transform_world(T, "set up from 3 points")
        return R.float()


def _rotation_between(a: Tensor, b: Tensor) -> Tensor:
    """The rotation `[3, 3]` (float64) taking the unit vector `a [3]` to the unit vector `b [3]` by the shortest
    turn (half a turn about an axis normal to both when they are opposite)."""
    v, c = torch.linalg.cross(a, b), float(a @ b)
    if c < -1 + 1e-12:
        axis = torch.linalg.cross(a, torch.eye(3, dtype=a.dtype, device="cpu")[int(a.abs().argmin())])
        axis = axis / axis.norm()
        return 2 * torch.outer(axis, axis) - torch.eye(3, dtype=a.dtype, device="cpu")
    V = torch.tensor([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]], dtype=a.dtype, device="cpu")
    return torch.eye(3, dtype=a.dtype, device="cpu") + V + V @ V / (1 + c)
