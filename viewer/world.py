"""The world the viewer edits: layers of splats, a selection, and undo/redo. No browser needed.

    world = World()
    world.add_layer("garden", load_splats("garden.ply"))
    world.select_box(lo, hi)            # selection: a [N] mask per layer
    world.select_rect(camera, (10, 20), (200, 120), front_only=True)   # on screen, from a `Cameras`
    world.select_object(camera, (120, 80))    # the whole object under a pixel (spatial/splats/objects.py)
    world.delete_selected()             # every edit is undoable, and named in world.history()
    world.undo(); world.redo()
    world.save_splats("edited.ply")        # all visible layers, transforms applied, one file

A layer keeps its Gaussians in its own frame and a similarity `transform` to the world, so moving
a layer is one matrix until it is saved or merged (then the transform is baked into the splats).
Selections and edits touch the visible, unlocked layers only; the world-wide ones (scale, up) move every layer.

One file: every method changes the same two things, the layers and the selection, through one undoable step
(`_checkpoint`), so the class reads as sections in the order of the viewer's panels: layers, selection, selections on
screen, edits, colour, the world's scale and up, undo, files. The undo steps are a part with its own state
(history.py); the on-screen geometry is spatial.splats.screen's, the colour grades spatial.splats.colour's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from spatial.cameras import Cameras
from spatial.errors import SpatialError
from spatial.formats import load_splats, save_splats
from spatial.render.sh import C0
from spatial.splats import objects, screen, select
from spatial.splats.colour import ColourAdjustment, adjust_colour
from spatial.splats.model import check_splats
from spatial.splats.objects import ObjectsConfig
from spatial.splats.transform import merge_splats, transform_splats
from spatial.transforms import rotation_between, similarity_problem
from spatial_viewer.history import History

MAX_UNDO = 50
VOTERS = 16  # Gaussians nearest a clicked surface point that decide which object it is (World.select_object)


@dataclass
class Layer:
    name: str
    params: dict[str, Tensor]  # raw splat parameters in the layer's own frame
    transform: Tensor = field(default_factory=lambda: torch.eye(4, device="cpu"))  # [4, 4] similarity, layer -> world
    source: str | None = None  # file it was loaded from, for the world file
    visible: bool = True
    locked: bool = False  # shown, but out of reach of selections and edits

    @property
    def editable(self) -> bool:
        return self.visible and not self.locked

    @property
    def count(self) -> int:
        return self.params["means"].shape[0]

    def world_params(self) -> dict[str, Tensor]:
        return self.in_world(self.params)

    def in_world(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """`params` of (some of) this layer's Gaussians moved into world coordinates by its transform."""
        if torch.equal(self.transform, torch.eye(4, device="cpu")):
            return params
        return transform_splats(params, self.transform)

    def world_means(self) -> Tensor:  # [N, 3]
        T = self.transform
        return self.params["means"] @ T[:3, :3].T + T[:3, 3]


@dataclass(frozen=True)
class Pick:
    """What is under a clicked pixel: the surface point drawn there and the Gaussian nearest to it."""

    layer: str
    index: int  # of the Gaussian in its layer
    point: Tensor  # [3] world surface point


class World:
    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.selection: dict[str, Tensor] = {}  # layer name -> [N] bool
        self.steps = History(MAX_UNDO)  # named snapshots of (layers, selection)
        self.version = 0  # bumped on every change, so a view knows when to redraw
        self._objects: tuple | None = None  # (the layers it was made from, `segment`'s result)

    # ---- layers -----------------------------------------------------------------------------
    def add_layer(self, name: str, params: dict[str, Tensor], source: str | None = None,
                  transform: Tensor | None = None) -> Layer:
        if transform is not None:
            _check_transform(name, transform)
        self._checkpoint(f"add layer {name}")
        name = self._free_name(name)
        layer = Layer(name, {k: v.detach().cpu().float() for k, v in params.items()},
                      torch.eye(4, device="cpu") if transform is None else transform.float(), source)
        self.layers.append(layer)
        self.selection[name] = torch.zeros(layer.count, dtype=torch.bool, device="cpu")
        self._changed()
        return layer

    def update_layer(self, name: str, params: dict[str, Tensor]) -> Layer:
        """Replace a layer's splats without an undo step (a model that is still training), adding it if new."""
        params = {k: v.detach().cpu().float() for k, v in params.items()}
        for layer in self.layers:
            if layer.name == name:
                layer.params = params
                break
        else:
            layer = Layer(name, params)
            self.layers.append(layer)
        self.selection[name] = torch.zeros(layer.count, dtype=torch.bool, device="cpu")
        self._changed()
        return layer

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(l.name for l in self.layers)}")

    def _free_name(self, name: str) -> str:
        base, i = name, 1
        while any(layer.name == name for layer in self.layers):
            i += 1
            name = f"{base}-{i}"
        return name

    def set_transform(self, name: str, transform: Tensor) -> None:
        _check_transform(name, transform)
        self._checkpoint(f"move {name}")
        self.layer(name).transform = transform.float().clone()
        self._changed()

    def merge_layers(self, name: str = "world") -> Layer:
        """Bake every layer's transform and join all layers into one."""
        if len(self.layers) < 2:
            raise SpatialError("merging needs at least two layers")
        self._checkpoint("merge layers")
        merged = merge_splats([layer.world_params() for layer in self.layers])
        selection = torch.cat([self.selection[layer.name] for layer in self.layers])
        self.layers = [Layer(name, merged)]
        self.selection = {name: selection}
        self._changed()
        return self.layers[0]

    def set_visible(self, name: str, visible: bool) -> None:
        self._set_layer(name, f"{'show' if visible else 'hide'} {name}", visible=visible)

    def set_locked(self, name: str, locked: bool) -> None:
        self._set_layer(name, f"{'lock' if locked else 'unlock'} {name}", locked=locked)

    def rename_layer(self, name: str, new_name: str) -> None:
        new_name = new_name.strip()
        if not new_name or any(c in new_name for c in '/\\:*?"<>|') or new_name in {".", ".."}:
            raise SpatialError(f"{new_name!r} cannot name a layer: use letters, digits, spaces, '-' or '_'")
        if new_name != name and any(layer.name == new_name for layer in self.layers):
            raise SpatialError(f"there is a layer named {new_name!r} already")
        self._set_layer(name, f"rename {name} to {new_name}", name=new_name)
        self.selection = {new_name if n == name else n: m for n, m in self.selection.items()}

    def _set_layer(self, layer_name: str, label: str, **changes) -> None:
        index = self.layers.index(self.layer(layer_name))
        self._checkpoint(label)
        self.layers = [*self.layers[:index], replace(self.layers[index], **changes), *self.layers[index + 1:]]
        self._changed()

    def duplicate_layer(self, name: str) -> Layer:
        layer = self.layer(name)
        self._checkpoint(f"duplicate {name}")
        copy = replace(layer, name=self._free_name(f"{name} copy"), transform=layer.transform.clone(), source=None)
        self.layers.insert(self.layers.index(layer) + 1, copy)
        self.selection[copy.name] = torch.zeros(copy.count, dtype=torch.bool, device="cpu")
        self._changed()
        return copy

    def delete_layer(self, name: str) -> None:
        layer = self.layer(name)
        self._checkpoint(f"delete layer {name}")
        self.layers = [other for other in self.layers if other is not layer]
        self.selection = {n: m for n, m in self.selection.items() if n != name}
        self._changed()

    def split_selection(self, name: str = "selection") -> Layer:
        """Move the selected Gaussians into a new layer (in world coordinates), taking them out of theirs."""
        if not self.selected_count():
            raise SpatialError("nothing is selected: select the Gaussians to split off first")
        self._checkpoint("selection to new layer")
        parts = []
        for layer in self.layers:
            mask = self.selection[layer.name]
            if mask.any():
                parts.append(layer.in_world(select.subset(layer.params, mask)))
                layer.params = select.subset(layer.params, ~mask)
                self.selection[layer.name] = torch.zeros(layer.count, dtype=torch.bool, device="cpu")
        new = Layer(self._free_name(name), merge_splats(parts))
        self.layers.append(new)
        self.selection[new.name] = torch.zeros(new.count, dtype=torch.bool, device="cpu")
        self._changed()
        return new

    def split_objects(self, config: ObjectsConfig | None = None) -> list[Layer]:
        """Replace the visible, unlocked layers by one layer per object (`segment`), in world coordinates, named
        object-0, object-1, ... (the planes first, then the largest)."""
        labels = self.segment(config)
        if not any(len(ids) for ids in labels.values()):
            raise SpatialError("no visible, unlocked layer with Gaussians to split into objects")
        self._checkpoint("split into objects")
        sources = {name: self.layer(name) for name in labels}
        new = []
        for object_id in torch.unique(torch.cat(list(labels.values()))).tolist():
            parts = [sources[name].in_world(select.subset(sources[name].params, ids == object_id))
                     for name, ids in labels.items() if bool((ids == object_id).any())]
            new.append(Layer(f"object-{object_id}" if object_id >= 0 else "unsorted", merge_splats(parts)))
        self.layers = [l for l in self.layers if l.name not in sources]
        for name in sources:
            del self.selection[name]
        for layer in new:
            layer.name = self._free_name(layer.name)
            self.layers.append(layer)
            self.selection[layer.name] = torch.zeros(layer.count, dtype=torch.bool, device="cpu")
        self._changed()
        return new

    # ---- selection --------------------------------------------------------------------------
    def selected_count(self) -> int:
        return int(sum(int(m.sum()) for m in self.selection.values()))

    def _select(self, masks: dict[str, Tensor], mode: str, label: str = "select") -> int:
        """Combine per-layer masks with the selection: 'set', 'add', 'subtract' or 'intersect'. Hidden and
        locked layers are left out: their selection stays empty."""
        if mode not in ("set", "add", "subtract", "intersect"):
            raise SpatialError(f"unknown selection mode {mode!r}: use set, add, subtract or intersect")
        self._checkpoint(label if mode == "set" else f"{label} ({mode})")
        for layer in self.layers:
            old, name = self.selection[layer.name], layer.name
            if not layer.editable:
                self.selection[name] = torch.zeros_like(old)
                continue
            mask = masks.get(name, torch.zeros_like(old))
            self.selection[name] = {"set": mask, "add": old | mask, "subtract": old & ~mask,
                                    "intersect": old & mask}[mode]
        self._changed()
        return self.selected_count()

    def select_box(self, box_min: Tensor, box_max: Tensor, mode: str = "set") -> int:
        """Gaussians whose world centre is in the axis-aligned box."""
        return self._select({l.name: ((l.world_means() >= box_min) & (l.world_means() <= box_max)).all(-1)
                             for l in self.layers}, mode, "select in box")

    def select_oriented_box(self, box_to_world: Tensor, half_size: Tensor, mode: str = "set") -> int:
        return self._select({l.name: select.in_oriented_box({"means": l.world_means()}, box_to_world, half_size)
                             for l in self.layers}, mode, "select in box")

    def select_sphere(self, center: Tensor, radius: float, mode: str = "set") -> int:
        return self._select({l.name: (l.world_means() - center).norm(dim=-1) <= radius for l in self.layers}, mode,
                            "select in sphere")

    def select_opacity_below(self, threshold: float, mode: str = "set") -> int:
        return self._select({l.name: ~select.by_opacity(l.params, threshold) for l in self.layers}, mode,
                            "select faint")

    def select_scale_above(self, threshold: float, mode: str = "set") -> int:
        """Gaussians larger than `threshold` in world units (a layer's scale counts)."""
        masks = {}
        for l in self.layers:
            s = float(torch.linalg.det(l.transform[:3, :3]).abs() ** (1 / 3))
            masks[l.name] = ~select.by_scale(l.params, threshold / s)
        return self._select(masks, mode, "select large")

    def invert_selection(self) -> int:
        return self._select({n: ~m for n, m in self.selection.items()}, "set", "invert selection")

    def clear_selection(self) -> int:
        return self._select({n: torch.zeros_like(m) for n, m in self.selection.items()}, "set", "clear selection")

    # ---- selections on screen ----------------------------------------------------------------
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

    def segment(self, config: ObjectsConfig | None = None) -> dict[str, Tensor]:
        """Layer name -> `[N]` object id of each Gaussian, for the visible, unlocked layers segmented together in
        world coordinates (spatial/splats/objects.py: the large planes, then the pieces the rest falls into; on
        uneven ground, what stands apart from what faces up). Computed once per state of those layers."""
        config = config or ObjectsConfig()
        layers = [l for l in self.layers if l.editable and l.count]
        key = (repr(config), tuple((l.name, id(l.params), l.params["means"].data_ptr(), l.count,
                                    tuple(l.transform.reshape(-1).tolist())) for l in layers))
        if self._objects is not None and self._objects[0] == key:
            return self._objects[1]
        placed = [l.world_params() for l in layers]
        labels = objects.segment({name: torch.cat([p[name] for p in placed])
                                  for name in ("means", "opacities", "quats", "scales")}, config) \
            if layers else torch.zeros(0, dtype=torch.int64, device="cpu")
        result = dict(zip([l.name for l in layers], labels.split([l.count for l in layers])))
        self._objects = (key, result)
        return result

    def select_object(self, camera: Cameras, pixel, mode: str = "set", config: ObjectsConfig | None = None) -> int:
        """The whole object under `pixel` (x, y) of the one-camera `camera`: every Gaussian `segment` puts with the
        object drawn there (nothing where nothing is drawn). Which object that is, the VOTERS Gaussians nearest the
        drawn surface point decide, each by its opacity: where two objects meet, or a stray Gaussian of one lies
        on the other, the nearest single centre may be the other object's."""
        pick = self.pick(camera, pixel)
        if pick is None:
            return self._select({}, mode, "select object")
        labels = self.segment(config)
        layers = [l for l in self.layers if l.name in labels]
        means = torch.cat([l.world_means() for l in layers])  # [N, 3]
        weight = torch.sigmoid(torch.cat([l.params["opacities"] for l in layers]))  # [N]
        ids = torch.cat([labels[l.name] for l in layers])  # [N]
        nearest = torch.topk((means - pick.point).norm(dim=-1), min(VOTERS, len(ids)), largest=False).indices
        votes = torch.zeros(int(ids.max()) + 1, dtype=weight.dtype, device="cpu").index_add_(0, ids[nearest],
                                                                                           weight[nearest])
        target = int(votes.argmax())
        return self._select({name: l == target for name, l in labels.items()}, mode, "select object")

    # ---- edits ------------------------------------------------------------------------------
    def delete_selected(self) -> int:
        """Remove the selected Gaussians; returns how many were removed."""
        return self._keep({n: ~m for n, m in self.selection.items()}, "delete selection")

    def keep_selected(self) -> int:
        """Remove everything except the selected Gaussians (of the visible, unlocked layers)."""
        return self._keep(dict(self.selection), "keep selection")

    def crop_box(self, box_min: Tensor, box_max: Tensor) -> int:
        """Keep only Gaussians whose world centre is inside the box."""
        return self._keep({l.name: ((l.world_means() >= box_min) & (l.world_means() <= box_max)).all(-1)
                           for l in self.layers}, "crop to box")

    def _keep(self, masks: dict[str, Tensor], label: str) -> int:
        self._checkpoint(label)
        removed = 0
        for layer in self.layers:
            if not layer.editable:
                continue
            mask = masks[layer.name]
            removed += int((~mask).sum())
            layer.params = select.subset(layer.params, mask)
            self.selection[layer.name] = torch.zeros(layer.count, dtype=torch.bool, device="cpu")
        self._changed()
        return removed

    def tint_selected(self, rgb: tuple[float, float, float], strength: float = 1.0) -> int:
        """Blend the base colour of the selection towards `rgb` (0-1); strength 1 replaces it."""
        self._checkpoint("tint selection")
        target = (torch.tensor(rgb, dtype=torch.float32, device="cpu") - 0.5) / C0  # as a degree-0 SH coefficient
        for layer in self.layers:
            mask = self.selection[layer.name]
            sh0 = layer.params["sh0"].clone()
            sh0[mask, 0] = (1 - strength) * sh0[mask, 0] + strength * target
            layer.params = {**layer.params, "sh0": sh0}
            if strength >= 1:  # a full recolour also drops the view-dependent part
                shN = layer.params["shN"].clone()
                shN[mask] = 0
                layer.params["shN"] = shN
        self._changed()
        return self.selected_count()

    # ---- colour -----------------------------------------------------------------------------
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

    # ---- the world's scale and up -------------------------------------------------------------
    def transform_world(self, T: Tensor, label: str, layer: str | None = None) -> None:
        """Apply the similarity `T [4, 4]` (world -> world) to every layer, or to one."""
        moved = {l.name: T.float() @ l.transform for l in self.layers if layer is None or l.name == layer}
        for name, transform in moved.items():
            _check_transform(name, transform)
        self._checkpoint(label)
        for l in self.layers:
            l.transform = moved.get(l.name, l.transform)
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
        R = rotation_between(normal, up)
        T = torch.eye(4, device="cpu")
        T[:3, :3] = R.float()
        self.transform_world(T, "set up from 3 points")
        return R.float()

    # ---- undo -------------------------------------------------------------------------------
    def _state(self) -> tuple:
        # params dicts are replaced, never modified in place, so a shallow copy is a snapshot
        return ([replace(l, transform=l.transform.clone()) for l in self.layers], dict(self.selection))

    def _checkpoint(self, label: str) -> None:
        self.steps.record(label, self._state())

    def history(self) -> list[tuple[str, bool]]:
        """The named steps, oldest first: (what, done); those not done are the ones redo would bring back."""
        return self.steps.steps()

    def forget_history(self) -> None:
        """Drop undo and redo: what was done before (opening the files) is not an edit to take back."""
        self.steps.clear()

    def undo(self) -> bool:
        return self._restore(self.steps.undo(self._state()))

    def redo(self) -> bool:
        return self._restore(self.steps.redo(self._state()))

    def _restore(self, state: tuple | None) -> bool:
        if state is None:
            return False
        self.layers, self.selection = state
        self._changed()
        return True

    def _changed(self) -> None:
        self.version += 1

    # ---- files ------------------------------------------------------------------------------
    def world_params(self) -> dict[str, Tensor]:
        visible = [layer.world_params() for layer in self.layers if layer.visible and layer.count]
        if not visible:
            raise SpatialError("the world is empty: nothing to save")
        params = merge_splats(visible)
        check_splats("the world", params, "scale or move its layers back before saving it")
        return params

    def save_splats(self, path: Path) -> int:
        """All visible layers with their transforms applied, as one splat file (.ply, .splat or .spz)."""
        params = self.world_params()
        save_splats(params, Path(path))
        return params["means"].shape[0]

    def save_layers(self, path: Path) -> list[Path]:
        """Each visible layer, its transform applied, as its own splat file `STEM-LAYER.SUFFIX` beside `path`
        (the suffix picks the format)."""
        path, files = Path(path), []
        for layer in self.layers:
            if layer.visible and layer.count:
                file = path.with_name(f"{path.stem}-{layer.name}{path.suffix}")
                save_splats(check_splats(f"layer {layer.name}", layer.world_params(), "scale or move it back "
                                         "before saving it"), file)
                files.append(file)
        if not files:
            raise SpatialError("the world is empty: nothing to save")
        return files

    def save_world(self, path: Path, overwrite: bool = False) -> None:
        """A world file (see world_file.py): each layer's splats beside it and its transform, to open later.
        An existing world file is replaced only with `overwrite` (the viewer asks first)."""
        from spatial_viewer.world_file import write_world_file

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists: confirm to overwrite it")
        write_world_file(path, self.layers)

    @classmethod
    def load_world(cls, path: Path) -> World:
        from spatial_viewer.world_file import read_world_file

        world = cls()
        for name, file, source, transform, visible, locked in read_world_file(Path(path)):
            layer = world.add_layer(name, load_splats(file), source, transform)
            layer.visible, layer.locked = visible, locked
        world.forget_history()
        return world


def _check_transform(name: str, transform: Tensor) -> None:
    problem = similarity_problem(transform)
    if problem:
        raise SpatialError(f"the transform of layer {name!r} {problem}")
