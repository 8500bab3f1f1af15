"""The Layers panel: move a layer with a gizmo, merge the layers, save the world or one splat file."""

from __future__ import annotations

from spatial_viewer.poses import pose_matrix, pose_of


class LayersPanel:
    def __init__(self, app):
        gui, world = app.server.gui, app.world
        self.app, self._gizmo = app, None
        with gui.add_folder("Layers"):
            names = [layer.name for layer in world.layers] or ["(none)"]
            self.pick = gui.add_dropdown("Layer", tuple(names), initial_value=names[0])
            move = gui.add_checkbox("Move layer (gizmo)", False)

            @move.on_update
            def _(_) -> None:
                if self._gizmo is not None:
                    self._gizmo.remove()
                    self._gizmo = None
                if move.value and world.layers:
                    self._attach_gizmo(self.pick.value)

            gui.add_button("Merge layers").on_click(lambda _: app.edit(world.merge_layers))
            gui.add_button("Save splats", hint=f"writes {app.out} (its suffix picks the format)").on_click(
                lambda _: self.save())
            gui.add_button("Save world", hint="the layers and their transforms").on_click(lambda _: self.save_world())

    def save(self) -> None:
        def save():
            n = self.app.world.save_splats(self.app.out)
            self.app.notify(f"saved {n:,} Gaussians to {self.app.out}")
        self.app.guard(save)

    def save_world(self) -> None:
        path = self.app.out.with_suffix(".world.json")
        self.app.guard(lambda: (self.app.world.save_world(path), self.app.notify(f"saved {path}")))

    def _attach_gizmo(self, name: str) -> None:
        app = self.app
        wxyz, position, _ = pose_of(app.world.layer(name).transform)
        gizmo = self._gizmo = app.server.scene.add_transform_controls("/layer_gizmo", scale=1.0, wxyz=wxyz,
                                                                      position=position)

        @gizmo.on_drag_end
        def _(_) -> None:
            scale = pose_of(app.world.layer(name).transform)[2]  # the gizmo moves and turns; the scale stays
            app.edit(lambda: app.world.set_transform(name, pose_matrix(gizmo.wxyz, gizmo.position, scale)))
