"""The world the viewer edits: layers of splats, a selection, and undo/redo. No browser needed.

    world = World()
    world.add_layer("garden", load_splats("garden.ply"))
    world.select_box(lo, hi)            # selection: a [N] mask per layer
    world.select_rect(camera, (10, 20), (200, 120), front_only=True)   # on screen, from a `Cameras`
    world.delete_selected()             # every edit is undoable, and named in world.history()
    world.undo(); world.redo()
    world.save_splats("edited.ply")        # all visible layers, transforms applied, one file

A layer keeps its Gaussians in its own frame and a similarity `transform` to the world, so moving
a layer is one matrix until it is saved or merged (then the transform is baked into the splats).
Selections and edits touch the visible, unlocked layers only; the world-wide ones (scale, up) move every layer.
Two parts of `World` live beside it: world_layers.py (hide, lock, rename, duplicate, split, delete, a file per
layer) and world_tools.py (what the viewer's tools do: rectangle, pick, similar colour, colour grades, scale, up).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from spatial.errors import SpatialError
from spatial.formats import load_splats, save_splats
from spatial.render.sh import C0
from spatial.splats import select
from spatial.splats.transform import merge_splats
from spatial_viewer.world_layers import Layer, LayerEdits
from spatial_viewer.world_tools import Pick, ScreenTools

__all__ = ["Layer", "Pick", "World"]

MAX_UNDO = 50


class World(LayerEdits, ScreenTools):
    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.selection: dict[str, Tensor] = {}  # layer name -> [N] bool
        self._undo: list[tuple] = []  # (what was done, the state before it)
        self._redo: list[tuple] = []  # (what was undone, the state after it)
        self.version = 0  # bumped on every change, so a view knows when to redraw

    # ---- layers -----------------------------------------------------------------------------
    def add_layer(self, name: str, params: dict[str, Tensor], source: str | None = None,
                  transform: Tensor | None = None) -> Layer:
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

    # ---- undo -------------------------------------------------------------------------------
    def _state(self) -> tuple:
        return ([replace(l, transform=l.transform.clone()) for l in self.layers], dict(self.selection))

    def _checkpoint(self, label: str) -> None:
        # params dicts are replaced, never modified in place, so a shallow copy is a snapshot
        self._undo.append((label, self._state()))
        del self._undo[:-MAX_UNDO]
        self._redo.clear()

    def history(self) -> list[tuple[str, bool]]:
        """The named steps, oldest first: (what, done); those not done are the ones redo would bring back."""
        return [(label, True) for label, _ in self._undo] + [(label, False) for label, _ in reversed(self._redo)]

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
        label, state = self._undo.pop()
        self._redo.append((label, self._state()))
        self._restore(state)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        label, state = self._redo.pop()
        self._undo.append((label, self._state()))
        self._restore(state)
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

