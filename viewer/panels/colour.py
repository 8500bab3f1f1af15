"""The Colour panel: grade the selection or one layer (brightness, contrast, saturation, temperature, tint,
opacity), previewed in the view while the sliders move, applied as one undoable step."""

from __future__ import annotations

from spatial.errors import SpatialError
from spatial.splats.colour import ColourAdjustment

CONTROLS = (  # (field, label, min, max, neutral)
    ("brightness", "Brightness", -1.0, 1.0, 0.0),
    ("contrast", "Contrast", -1.0, 1.0, 0.0),
    ("saturation", "Saturation", -1.0, 1.0, 0.0),
    ("temperature", "Temperature", -1.0, 1.0, 0.0),
    ("tint", "Tint", -1.0, 1.0, 0.0),
    ("opacity", "Opacity scale", 0.0, 2.0, 1.0),
)


class ColourPanel:
    def __init__(self, app):
        gui, self.app = app.server.gui, app
        with gui.add_folder("Colour", expand_by_default=False):
            self.target = gui.add_dropdown("Apply to", self._targets(), initial_value="selection")
            self.sliders = {field: gui.add_slider(label, lo, hi, 0.01, neutral)
                            for field, label, lo, hi, neutral in CONTROLS}
            self.show_preview = gui.add_checkbox("Preview", True, hint="show the grade before it is applied")
            gui.add_button("Apply colour").on_click(lambda _: self.apply())
            gui.add_button("Reset sliders").on_click(lambda _: self.reset())
        for control in (*self.sliders.values(), self.show_preview, self.target):
            control.on_update(lambda _: self.preview())
        app.on_change.append(self._refresh_targets)

    def adjustment(self) -> ColourAdjustment:
        return ColourAdjustment(**{field: float(s.value) for field, s in self.sliders.items()})

    def preview(self) -> None:
        adjustment = self.adjustment()
        if not self.show_preview.value or adjustment.is_identity:
            self.app.set_preview({})
            return
        try:
            self.app.set_preview(self.app.world.colour_preview(adjustment, self.target.value))
        except (SpatialError, KeyError):
            self.app.set_preview({})  # nothing selected yet, or the layer is hidden: Apply says so

    def apply(self) -> None:
        adjustment = self.adjustment()
        self.app.preview = {}
        self.app.edit(lambda: self.app.world.adjust_colour(adjustment, self.target.value))
        self.reset()

    def reset(self) -> None:
        for field, *_, neutral in CONTROLS:
            self.sliders[field].value = neutral
        self.app.set_preview({})

    def _targets(self) -> tuple[str, ...]:
        return ("selection", *(layer.name for layer in self.app.world.layers))

    def _refresh_targets(self) -> None:
        targets = self._targets()
        if tuple(self.target.options) != targets:
            keep = self.target.value if self.target.value in targets else "selection"
            self.target.options = targets
            self.target.value = keep
