"""A world's layers (`Layer`) and the edits that manage them, a part of `World` (see world.py): show and hide, lock,
rename, duplicate, delete, the selection split into a layer of its own, and each layer saved to its own file.
Every edit is one named, undoable step."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from spatial.errors import SpatialError
from spatial.formats import save_splats
from spatial.splats import select
from spatial.splats.transform import merge_splats, transform_splats


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


class LayerEdits:
    """`World`'s layer management (its `layers`, `selection`, `_checkpoint` and `_changed` are World's)."""

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

    def save_layers(self, path: Path) -> list[Path]:
        """Each visible layer, its transform applied, as its own splat file `STEM-LAYER.SUFFIX` beside `path`
        (the suffix picks the format)."""
        path, files = Path(path), []
        for layer in self.layers:
            if layer.visible and layer.count:
                file = path.with_name(f"{path.stem}-{layer.name}{path.suffix}")
                save_splats(layer.world_params(), file)
                files.append(file)
        if not files:
            raise SpatialError("the world is empty: nothing to save")
        return files
