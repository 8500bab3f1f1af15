"""The world the viewer edits: layers of splats, a selection, and undo/redo. No browser needed.

    world = World()
    world.add_layer("garden", load_splats("garden.ply"))
    world.select_box(lo, hi)            # selection: a [N] mask per layer
    world.delete_selected()             # every edit is undoable
    world.undo(); world.redo()
    world.save_splats("edited.ply")        # all visible layers, transforms applied, one file

A layer keeps its Gaussians in its own frame and a similarity `transform` to the world, so moving
a layer is one matrix until it is saved or merged (then the transform is baked into the splats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from spatial.errors import SpatialError
from spatial.formats import load_splats, save_splats
from spatial.render.sh import C0
from spatial.splats import select
from spatial.splats.transform import merge_splats, transform_splats

MAX_UNDO = 50


@dataclass
class Layer:
    name: str
    params: dict[str, Tensor]  # raw splat parameters in the layer's own frame
    transform: Tensor = field(default_factory=lambda: torch.eye(4))  # [4, 4] similarity, layer -> world
    source: str | None = None  # file it was loaded from, for the world file
    visible: bool = True

    @property
    def count(self) -> int:
        return self.params["means"].shape[0]

    def world_params(self) -> dict[str, Tensor]:
        if torch.equal(self.transform, torch.eye(4)):
            return self.params
        return transform_splats(self.params, self.transform)

    def world_means(self) -> Tensor:  # [N, 3]
        T = self.transform
        return self.params["means"] @ T[:3, :3].T + T[:3, 3]


class World:
    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.selection: dict[str, Tensor] = {}  # layer name -> [N] bool
        self._undo: list[tuple] = []
        self._redo: list[tuple] = []
        self.version = 0  # bumped on every change, so a view knows when to redraw

    # ---- layers -----------------------------------------------------------------------------
    def add_layer(self, name: str, params: dict[str, Tensor], source: str | None = None,
                  transform: Tensor | None = None) -> Layer:
        self._checkpoint()
        base, i = name, 1
        while any(layer.name == name for layer in self.layers):
            i += 1
            name = f"{base}-{i}"
        layer = Layer(name, {k: v.detach().cpu().float() for k, v in params.items()},
                      torch.eye(4) if transform is None else transform.float(), source)
        self.layers.append(layer)
        self.selection[name] = torch.zeros(layer.count, dtype=torch.bool)
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
        self.selection[name] = torch.zeros(layer.count, dtype=torch.bool)
        self._changed()
        return layer

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(l.name for l in self.layers)}")

    def set_transform(self, name: str, transform: Tensor) -> None:
        self._checkpoint()
        self.layer(name).transform = transform.float().clone()
        self._changed()

    def merge_layers(self, name: str = "world") -> Layer:
        """Bake every layer's transform and join all layers into one."""
        if len(self.layers) < 2:
            raise SpatialError("merging needs at least two layers")
        self._checkpoint()
        merged = merge_splats([layer.world_params() for layer in self.layers])
        selection = torch.cat([self.selection[layer.name] for layer in self.layers])
        self.layers = [Layer(name, merged)]
        self.selection = {name: selection}
        self._changed()
        return self.layers[0]

    # ---- selection --------------------------------------------------------------------------
    def selected_count(self) -> int:
        return int(sum(int(m.sum()) for m in self.selection.values()))

    def _select(self, masks: dict[str, Tensor], mode: str) -> int:
        """Combine per-layer masks with the selection: 'set', 'add', 'subtract' or 'intersect'."""
        self._checkpoint()
        for name, mask in masks.items():
            old = self.selection[name]
            self.selection[name] = {"set": mask, "add": old | mask, "subtract": old & ~mask,
                                    "intersect": old & mask}[mode]
        self._changed()
        return self.selected_count()

    def select_box(self, box_min: Tensor, box_max: Tensor, mode: str = "set") -> int:
        """Gaussians whose world centre is in the axis-aligned box."""
        return self._select({l.name: ((l.world_means() >= box_min) & (l.world_means() <= box_max)).all(-1)
                             for l in self.layers}, mode)

    def select_oriented_box(self, box_to_world: Tensor, half_size: Tensor, mode: str = "set") -> int:
        return self._select({l.name: select.in_oriented_box({"means": l.world_means()}, box_to_world, half_size)
                             for l in self.layers}, mode)

    def select_sphere(self, center: Tensor, radius: float, mode: str = "set") -> int:
        return self._select({l.name: (l.world_means() - center).norm(dim=-1) <= radius for l in self.layers}, mode)

    def select_opacity_below(self, threshold: float, mode: str = "set") -> int:
        return self._select({l.name: ~select.by_opacity(l.params, threshold) for l in self.layers}, mode)

    def select_scale_above(self, threshold: float, mode: str = "set") -> int:
        """Gaussians larger than `threshold` in world units (a layer's scale counts)."""
        masks = {}
        for l in self.layers:
            s = float(torch.linalg.det(l.transform[:3, :3]).abs() ** (1 / 3))
            masks[l.name] = ~select.by_scale(l.params, threshold / s)
        return self._select(masks, mode)

    def invert_selection(self) -> int:
        return self._select({n: ~m for n, m in self.selection.items()}, "set")

    def clear_selection(self) -> int:
        return self._select({n: torch.zeros_like(m) for n, m in self.selection.items()}, "set")

    # ---- edits ------------------------------------------------------------------------------
    def delete_selected(self) -> int:
        """Remove the selected Gaussians; returns how many were removed."""
        return self._keep({n: ~m for n, m in self.selection.items()})

    def keep_selected(self) -> int:
        """Remove everything except the selected Gaussians."""
        return self._keep(dict(self.selection))

    def crop_box(self, box_min: Tensor, box_max: Tensor) -> int:
        """Keep only Gaussians whose world centre is inside the box."""
        return self._keep({l.name: ((l.world_means() >= box_min) & (l.world_means() <= box_max)).all(-1)
                           for l in self.layers})

    def _keep(self, masks: dict[str, Tensor]) -> int:
        self._checkpoint()
        removed = 0
        for layer in self.layers:
            mask = masks[layer.name]
            removed += int((~mask).sum())
            layer.params = select.subset(layer.params, mask)
            self.selection[layer.name] = torch.zeros(layer.count, dtype=torch.bool)
        self._changed()
        return removed

    def tint_selected(self, rgb: tuple[float, float, float], strength: float = 1.0) -> int:
        """Blend the base colour of the selection towards `rgb` (0-1); strength 1 replaces it."""
        self._checkpoint()
        target = (torch.tensor(rgb, dtype=torch.float32) - 0.5) / C0  # as a degree-0 SH coefficient
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

    # ---- undo -------------------------------------------------------------------------------
    def _state(self) -> tuple:
        return ([Layer(l.name, l.params, l.transform.clone(), l.source, l.visible) for l in self.layers],
                dict(self.selection))

    def _checkpoint(self) -> None:
        # params dicts are replaced, never modified in place, so a shallow copy is a snapshot
        self._undo.append(self._state())
        del self._undo[:-MAX_UNDO]
        self._redo.clear()

    def _restore(self, state: tuple) -> None:
        layers, selection = state
        self.layers, self.selection = layers, selection
        self._changed()

    def forget_history(self) -> None:
        """Drop undo and redo: what was done before (opening the files) is not an edit to take back."""
        self._undo.clear()
        self._redo.clear()

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self._state())
        self._restore(self._undo.pop())
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self._state())
        self._restore(self._redo.pop())
        return True

    def _changed(self) -> None:
        self.version += 1

    # ---- files ------------------------------------------------------------------------------
    def world_params(self) -> dict[str, Tensor]:
        visible = [layer.world_params() for layer in self.layers if layer.visible and layer.count]
        if not visible:
            raise SpatialError("the world is empty: nothing to save")
        return merge_splats(visible)

    def save_splats(self, path: Path) -> int:
        """All visible layers with their transforms applied, as one splat file (.ply, .splat or .spz)."""
        params = self.world_params()
        save_splats(params, Path(path))
        return params["means"].shape[0]

    def save_world(self, path: Path) -> None:
        """A world file (see world_file.py): each layer's splats beside it and its transform, to open later."""
        from spatial_viewer.world_file import write_world_file

        write_world_file(Path(path), self.layers)

    @classmethod
    def load_world(cls, path: Path) -> World:
        from spatial_viewer.world_file import read_world_file

        world = cls()
        for name, file, source, transform, visible in read_world_file(Path(path)):
            world.add_layer(name, load_splats(file), source, transform).visible = visible
        world.forget_history()
        return world
