"""The Select panel: a box gizmo (its box and the sphere inside it), faint and large splats, invert, clear;
each selection sets, adds to, subtracts from or intersects the current one."""

from __future__ import annotations

import torch

from spatial_viewer.poses import pose_matrix


class SelectPanel:
    def __init__(self, app):
        gui, scene, world = app.server.gui, app.server.scene, app.world
        self.app = app
        with gui.add_folder("Select"):
            self.mode = gui.add_dropdown("Mode", ("set", "add", "subtract", "intersect"), initial_value="set")
            self.box = scene.add_transform_controls("/selection_box", scale=0.5, visible=False)
            self.box_size = gui.add_slider("Box size", 0.01, 10.0, 0.01, 1.0)
            self.show_box = gui.add_checkbox("Show box", False)
            self._box_mesh = None
            self.box_size.on_update(self._draw_box)
            self.show_box.on_update(self._draw_box)
            self._draw_box()

            gui.add_button("Select in box").on_click(lambda _: app.edit(lambda: world.select_oriented_box(
                self.box_to_world(), torch.full((3,), self.box_size.value / 2, device="cpu"), self.mode.value)))
            gui.add_button("Select in sphere", hint="the sphere inside the box").on_click(
                lambda _: app.edit(lambda: world.select_sphere(self.box_to_world()[:3, 3], self.box_size.value / 2,
                                                               self.mode.value)))
            opacity = gui.add_slider("Opacity below", 0.0, 1.0, 0.01, 0.1)
            gui.add_button("Select faint").on_click(
                lambda _: app.edit(lambda: world.select_opacity_below(opacity.value, self.mode.value)))
            scale = gui.add_number("Scale above", 0.1, min=0.0, step=0.01)
            gui.add_button("Select large").on_click(
                lambda _: app.edit(lambda: world.select_scale_above(scale.value, self.mode.value)))
            gui.add_button("Invert selection").on_click(lambda _: app.edit(world.invert_selection))
            gui.add_button("Clear selection").on_click(lambda _: app.edit(world.clear_selection))

    def box_to_world(self) -> torch.Tensor:
        """The gizmo's pose `[4, 4]` (the box is `box_size` on each side around it)."""
        return pose_matrix(self.box.wxyz, self.box.position)

    def box_corners(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The axis-aligned box around the gizmo's centre: (lower, upper) `[3]` each, world units."""
        center, half = self.box_to_world()[:3, 3], self.box_size.value / 2
        return center - half, center + half

    def _draw_box(self, *_) -> None:
        self.box.visible = self.show_box.value
        if self._box_mesh is not None:
            self._box_mesh.remove()
        s = self.box_size.value
        self._box_mesh = self.app.server.scene.add_box("/selection_box/shape", color=(255, 140, 0),
                                                       dimensions=(s, s, s), opacity=0.25, visible=self.show_box.value)
