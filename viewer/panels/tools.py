"""The Tools panel: what a drag or a click in the 3D view does, as in SuperSplat.

    orbit               the camera moves (viser's own controls); the other tools keep the wheel zoom
    rectangle select    drag a rectangle: the Gaussians whose centres are inside it on screen (Select panel's mode)
    pick                click: the Gaussian under the cursor (the surface our renderer draws there, nearest centre)
    select similar      click: every Gaussian of about the clicked one's colour
    select object       click: the whole object under the cursor (World.select_object: the floor or wall it
                        stands on, or the piece it makes once those are out)
    focus               click: the orbit centre moves to the surface under the cursor
    measure             two clicks: the distance between them; type the true length to scale the world to it
    set up              three clicks on the ground: it becomes level, up is -y (as the 3DGS tools and SuperSplat read)

Positions come from the browser's own camera at the size it draws (`client_view`), so what is selected is what
the user sees; the work is `World`'s, tested without a browser.
"""

from __future__ import annotations

import numpy as np
import torch

from spatial_viewer.poses import client_view

TOOLS = ("orbit", "rectangle select", "pick", "select similar", "select object", "focus", "measure", "set up")
MARKER = (0, 200, 255)


class ToolsPanel:
    def __init__(self, app, select):
        gui, self.app, self.select = app.server.gui, app, select
        self.points: list[torch.Tensor] = []  # clicked surface points (measure, set up): world [3] each
        self.last_pick = None
        self.last_rect = None  # (view, rect_min, rect_max) of the last rectangle, as the browser reported it
        self.last_click = None  # (view, pixel) of the last click, as the browser reported it
        self._markers: list = []
        with gui.add_folder("Tools"):
            self.tool = gui.add_dropdown("Mouse", TOOLS, initial_value="orbit",
                                         hint="what a drag or click in the view does; orbit moves the camera")
            self.front_only = gui.add_checkbox("Front-most only", False,
                                               hint="rectangle: leave out Gaussians hidden behind a nearer surface")
            self.similar = gui.add_slider("Similar colour", 0.0, 1.0, 0.01, 0.1,
                                          hint="select similar: the largest RGB distance (0-1) taken as alike")
            self.readout = gui.add_markdown("")
            self.length = gui.add_number("True length", 1.0, min=0.0, step=0.01,
                                         hint="what the measured distance really is, e.g. in metres")
            self.layer_only = gui.add_checkbox("Scale one layer only", False,
                                               hint="the layer chosen in the Layers panel; otherwise the world")
            gui.add_button("Scale world to length").on_click(lambda _: app.edit(self.scale_to_length))
        self.tool.on_update(lambda _: self.use(self.tool.value))

    def use(self, tool: str) -> None:
        """Make `tool` what the mouse does in the view."""
        scene = self.app.server.scene
        scene.remove_click_callback("all")
        scene.remove_rect_select_callback("all")
        self.points = []
        self._clear_markers()
        self.readout.content = ""
        if tool == "rectangle select":
            scene.on_rect_select()(self._on_rect)
        elif tool != "orbit":
            scene.on_click()(self._on_click)
        if self.tool.value != tool:
            self.tool.value = tool

    # ---- events -----------------------------------------------------------------------------
    def _on_rect(self, event) -> None:
        view = client_view(event.client.camera)
        size = np.array([int(view.width[0]), int(view.height[0])], np.float64)
        a, b = np.asarray(event.screen_min) * size, np.asarray(event.screen_max) * size
        lo, hi = tuple(np.minimum(a, b)), tuple(np.maximum(a, b))
        self.last_rect = (view, lo, hi)
        self.app.edit(lambda: self.app.world.select_rect(view, lo, hi, self.select.mode.value, self.front_only.value))

    def _on_click(self, event) -> None:
        view = client_view(event.client.camera)
        pixel = np.asarray(event.screen_pos, np.float64) * np.array([int(view.width[0]), int(view.height[0])])
        self.last_click = (view, tuple(pixel))
        self.app.guard(lambda: self.click(view, tuple(pixel), event.client))

    def click(self, view, pixel, client=None) -> None:
        """What the chosen tool does with a click at `pixel` (x, y) of the one-camera `view`."""
        world, tool = self.app.world, self.tool.value
        pick = world.pick(view, pixel)
        if pick is None:
            self.app.notify("nothing is drawn there: click on the scene")
            return
        self.last_pick = pick
        if tool == "pick":
            self.app.edit(lambda: world.select_pick(pick, self.select.mode.value))
        elif tool == "select similar":
            self.app.edit(lambda: world.select_similar(pick, self.similar.value, self.select.mode.value))
        elif tool == "select object":
            self.app.edit(lambda: world.select_object(view, pixel, self.select.mode.value))
        elif tool == "focus":
            if client is not None:
                client.camera.look_at = pick.point.numpy().astype(np.float64)
            self.readout.content = f"orbit centre {_xyz(pick.point)}"
        elif tool in ("measure", "set up"):
            self._add_point(pick.point, 2 if tool == "measure" else 3, view)

    def _add_point(self, point: torch.Tensor, needed: int, view) -> None:
        if len(self.points) >= needed:
            self.points = []
            self._clear_markers()
        self.points.append(point)
        scene = self.app.server.scene
        self._markers.append(scene.add_icosphere(f"/tools/point{len(self.points)}", radius=0.01 * self._size(),
                                                 color=MARKER, position=point.numpy()))
        if self.tool.value == "measure":
            if len(self.points) == 2:
                self._markers.append(scene.add_line_segments(
                    "/tools/line", np.stack([p.numpy() for p in self.points])[None], MARKER,
                    thickness=0.004 * self._size()))
                self.readout.content = f"distance **{self.distance():.4g}** (scene units)"
            else:
                self.readout.content = "click the second point"
        elif len(self.points) == 3:
            toward = view.cam_to_world[0, :3, 3]
            self.app.edit(lambda: self.app.world.set_up(torch.stack(self.points), toward))
            self.app.server.scene.set_up_direction((0.0, -1.0, 0.0))
            self.readout.content = "the ground is level: up is -y"
            self.points = []
            self._clear_markers()
        else:
            self.readout.content = f"click {3 - len(self.points)} more ground points"

    def distance(self) -> float:
        return float((self.points[0] - self.points[1]).norm()) if len(self.points) == 2 else float("nan")

    def scale_to_length(self) -> None:
        if len(self.points) != 2:
            self.app.notify("measure first: choose the measure tool and click two points")
            return
        layer = self.app.layers.pick.value if self.layer_only.value and self.app.layers is not None else None
        factor = self.app.world.scale_to_length(self.points[0], self.points[1], float(self.length.value), layer)
        self.points = [p * factor for p in self.points]  # scaled about the origin, as the world (or layer) was
        self._clear_markers()
        what = "the world" if layer is None else f"layer {layer}"
        self.readout.content = f"scaled {what} x{factor:.4g}: the distance is now {self.distance():.4g}"

    # ---- markers ----------------------------------------------------------------------------
    def _size(self) -> float:
        """A length for markers: a fraction of the world's extent."""
        means = [l.world_means() for l in self.app.world.layers if l.count]
        if not means:
            return 1.0
        m = torch.cat(means)
        m = m[:: max(1, len(m) // 100_000)]  # a sample is enough
        return float((m.quantile(0.95, 0) - m.quantile(0.05, 0)).norm())

    def _clear_markers(self) -> None:
        for marker in self._markers:
            marker.remove()
        self._markers = []


def _xyz(p: torch.Tensor) -> str:
    return "(" + ", ".join(f"{float(x):.3g}" for x in p) + ")"
