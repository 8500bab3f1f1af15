"""The Edit panel: delete or keep the selection, crop to the Select panel's box, tint, undo and redo."""

from __future__ import annotations


class EditPanel:
    def __init__(self, app, select):
        gui, world = app.server.gui, app.world
        with gui.add_folder("Edit"):
            gui.add_button("Delete selection", color="red").on_click(lambda _: app.edit(world.delete_selected))
            gui.add_button("Keep selection").on_click(lambda _: app.edit(world.keep_selected))
            gui.add_button("Crop to box").on_click(lambda _: app.edit(lambda: world.crop_box(*select.box_corners())))
            tint = gui.add_rgb("Tint", (255, 0, 0))
            strength = gui.add_slider("Tint strength", 0.0, 1.0, 0.05, 0.5)
            gui.add_button("Tint selection").on_click(lambda _: app.edit(
                lambda: world.tint_selected(tuple(c / 255 for c in tint.value), strength.value)))
            gui.add_button("Undo").on_click(lambda _: app.edit(world.undo))
            gui.add_button("Redo").on_click(lambda _: app.edit(world.redo))
