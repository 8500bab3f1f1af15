"""The Layers panel: show, hide, lock, rename, duplicate, split off the selection or into objects, delete, move
with a gizmo, merge; save the visible layers as one splat file or one file each (any format, by suffix), or the
world."""

from __future__ import annotations

from spatial_viewer.poses import pose_matrix, pose_of


class LayersPanel:
    def __init__(self, app):
        gui, world = app.server.gui, app.world
        self.app, self._gizmo = app, None
        with gui.add_folder("Layers"):
            names = self._names()
            self.pick = gui.add_dropdown("Layer", names, initial_value=names[0])
            self.visible = gui.add_checkbox("Visible", True)
            self.locked = gui.add_checkbox("Locked", False, hint="shown, but out of reach of selections and edits")
            self.name = gui.add_text("Name", names[0])
            gui.add_button("Rename").on_click(lambda _: app.edit(lambda: world.rename_layer(self.pick.value,
                                                                                            self.name.value)))
            gui.add_button("Duplicate").on_click(lambda _: app.edit(lambda: world.duplicate_layer(self.pick.value)))
            gui.add_button("Selection to new layer").on_click(lambda _: app.edit(world.split_selection))
            gui.add_button("Split into objects", hint="a layer per object: the floor, the walls, each thing on "
                           "them (spatial/splats/objects.py)").on_click(lambda _: app.edit(world.split_objects))
            gui.add_button("Delete layer", color="red").on_click(
                lambda _: app.edit(lambda: world.delete_layer(self.pick.value)))
            move = self.move = gui.add_checkbox("Move layer (gizmo)", False)
            gui.add_button("Merge layers").on_click(lambda _: app.edit(world.merge_layers))
            self.each = gui.add_dropdown("Save as", ("one file", "a file per layer"), initial_value="one file")
            gui.add_button("Save splats", hint=f"writes {app.out} (its suffix picks the format)").on_click(
                lambda _: self.save())
            gui.add_button("Save world", hint="the layers and their transforms").on_click(lambda _: self.save_world())

        @move.on_update
        def _(_) -> None:
            self._detach_gizmo()
            if move.value and world.layers:
                self._attach_gizmo(self.pick.value)

        self.pick.on_update(lambda _: self._show_layer())
        self.visible.on_update(lambda _: self._set_flag("visible", self.visible.value))
        self.locked.on_update(lambda _: self._set_flag("locked", self.locked.value))
        app.on_change.append(self._refresh)

    # ---- the chosen layer ---------------------------------------------------------------------
    def _names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.app.world.layers) or ("(none)",)

    def _refresh(self) -> None:
        names = self._names()
        if tuple(self.pick.options) != names:
            keep = self.pick.value if self.pick.value in names else names[-1]
            self.pick.options = names
            self.pick.value = keep
        self._show_layer()

    def _show_layer(self) -> None:
        """The checkboxes and name field follow the chosen layer."""
        try:
            layer = self.app.world.layer(self.pick.value)
        except KeyError:
            return
        for control, value in ((self.visible, layer.visible), (self.locked, layer.locked), (self.name, layer.name)):
            if control.value != value:
                control.value = value

    def _set_flag(self, flag: str, value: bool) -> None:
        world = self.app.world
        try:
            layer = world.layer(self.pick.value)
        except KeyError:
            return
        if getattr(layer, flag) != value:
            setter = world.set_visible if flag == "visible" else world.set_locked
            self.app.edit(lambda: setter(layer.name, value))

    # ---- files ------------------------------------------------------------------------------
    def save(self) -> None:
        def save():
            if self.each.value == "one file":
                n = self.app.world.save_splats(self.app.out)
                self.app.notify(f"saved {n:,} Gaussians to {self.app.out}")
            else:
                files = self.app.world.save_layers(self.app.out)
                self.app.notify(f"saved {len(files)} layers: {', '.join(f.name for f in files)}")
        self.app.guard(save)

    def save_world(self, client=None) -> None:
        """Write the world file; one that exists is replaced only after the user confirms in a dialog."""
        path = self.app.out.with_suffix(".world.json")
        if not path.exists():
            self.app.guard(lambda: (self.app.world.save_world(path), self.app.notify(f"saved {path}")))
            return
        for each in [client] if client is not None else self.app.server.get_clients().values():
            with each.gui.add_modal("Overwrite the world file?") as modal:
                each.gui.add_markdown(f"`{path}` holds the last saved state of this world.")

                def overwrite(_, modal=modal) -> None:
                    modal.close()
                    self.app.guard(lambda: (self.app.world.save_world(path, overwrite=True),
                                            self.app.notify(f"saved {path}")))

                each.gui.add_button("Overwrite", color="red").on_click(overwrite)
                each.gui.add_button("Cancel").on_click(lambda _, modal=modal: modal.close())

    # ---- the gizmo --------------------------------------------------------------------------
    def _detach_gizmo(self) -> None:
        if self._gizmo is not None:
            self._gizmo.remove()
            self._gizmo = None

    def _attach_gizmo(self, name: str) -> None:
        app = self.app
        wxyz, position, _ = pose_of(app.world.layer(name).transform)
        gizmo = self._gizmo = app.server.scene.add_transform_controls("/layer_gizmo", scale=1.0, wxyz=wxyz,
                                                                      position=position)

        @gizmo.on_drag_end
        def _(_) -> None:
            scale = pose_of(app.world.layer(name).transform)[2]  # the gizmo moves and turns; the scale stays
            app.edit(lambda: app.world.set_transform(name, pose_matrix(gizmo.wxyz, gizmo.position, scale)))
