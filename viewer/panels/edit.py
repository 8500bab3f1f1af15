"""The Edit panel: delete or keep the selection, crop to the Select panel's box, tint, undo and redo, and the
history of named steps (those undone shown struck through, for redo)."""

from __future__ import annotations

HISTORY_SHOWN = 12  # the newest steps listed


class EditPanel:
    def __init__(self, app, select):
        gui, world = app.server.gui, app.world
        self.app = app
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
            self.history = gui.add_markdown("")
        app.on_change.append(self.show_history)
        self.show_history()

    def show_history(self) -> None:
        steps = self.app.world.history()
        if not steps:
            self.history.content = "*no edits yet*"
            return
        shown = steps[-HISTORY_SHOWN:]
        lines = [f"{len(steps) - len(shown) + i + 1}. " + (label if done else f"~~{label}~~")
                 for i, (label, done) in enumerate(shown)]
        self.history.content = "**History**\n\n" + "\n".join(lines)
