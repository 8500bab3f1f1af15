"""The viser app: splat layers drawn in the browser, training cameras, the GUI panels (viewer/panels/),
and server-side renders of colour, depth or alpha with our own renderer (server_renders.py).

    app = ViewerApp(world, cameras=scene.cameras, thumbnails=..., out=Path("edited.ply"))
    app.start(host="127.0.0.1", port=8080)   # then open app.url

Everything the buttons do is a method of `World` (see world.py), so it is tested without a browser.
Server-side renders go through the `TrainedModel` interface for splats and NeRFs alike (`shown_model`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from spatial.camera_path import scene_frame
from spatial.cameras import Cameras
from spatial.errors import SpatialError
from spatial.formats.html import viser_splats
from spatial.trained import FILE_BACKGROUND, TrainedModel
from spatial.transforms import rotmat_to_quat
from spatial_viewer.layers import StaticLayer
from spatial_viewer.poses import pose_of
from spatial_viewer.server_renders import MODES, ServerRenders
from spatial_viewer.world import World

SELECTED_RGB = np.array([1.0, 0.45, 0.0], np.float32)  # selection highlight (orange)


def splat_arrays(params: dict[str, torch.Tensor], selected: torch.Tensor) -> dict[str, np.ndarray]:
    """viser's inputs: centres, covariances R S^2 R^T, RGB (selection highlighted) and opacities."""
    arrays = viser_splats(params)
    rgb = arrays["rgbs"]
    rgb[selected.numpy()] = 0.3 * rgb[selected.numpy()] + 0.7 * SELECTED_RGB
    return arrays


class ViewerApp:
    def __init__(self, world: World, static: list[StaticLayer] | None = None, cameras: Cameras | None = None,
                 thumbnails: list[np.ndarray] | None = None, out: Path = Path("edited.ply"),
                 background: tuple[float, float, float] = FILE_BACKGROUND, up: np.ndarray | None = None,
                 editable: bool = True):
        self.editable = editable  # False while a model trains: its next refresh would undo any edit
        self.world, self.static, self.cameras, self.thumbnails = world, static or [], cameras, thumbnails
        self.out, self.background, self.up = Path(out), background, up
        self.server = None
        self.model: TrainedModel | None = None  # a model only the server can draw (a NeRF), shown instead of layers
        self.select = self.edit_panel = self.layers = self.paths = self.tools = self.colour = None  # the panels
        self.preview: dict[str, dict[str, torch.Tensor]] = {}  # layer name -> parameters drawn instead (colour)
        self.on_change: list = []  # called after each redraw that followed a change of the world
        self._preview_version = 0
        self._drawn_version = (-1, -1)
        self._mode_dropdown = None
        self._layer_handles: dict = {}
        self._frustums: list = []
        self._model_version = 0
        self._lock = threading.RLock()
        self.renders = ServerRenders(self.shown_model, background,
                                     state=lambda: (self.world.version, self._model_version),
                                     slow_model=lambda: self.model is not None)

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 8080) -> None:
        import viser

        from spatial_viewer.origin import own_origin_only
        from spatial_viewer.panels.camera_path import CameraPathPanel
        from spatial_viewer.panels.colour import ColourPanel
        from spatial_viewer.panels.edit import EditPanel
        from spatial_viewer.panels.layers import LayersPanel
        from spatial_viewer.panels.select import SelectPanel
        from spatial_viewer.panels.tools import ToolsPanel

        with own_origin_only(host):  # a page of another site must not drive this viewer
            self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.url = f"http://{host}:{self.server.get_port()}"
        if self.up is not None:
            self.server.scene.set_up_direction(tuple(float(x) for x in self.up))
        self._draw_static()
        self._draw_cameras()
        self._build_view_gui()
        if self.editable:
            self.select = SelectPanel(self)
            self.tools = ToolsPanel(self, self.select)
            self.edit_panel = EditPanel(self, self.select)
            self.colour = ColourPanel(self)
            self.layers = LayersPanel(self)
        self.paths = CameraPathPanel(self)
        self.redraw()
        self.server.on_client_connect(self._on_connect)
        self.renders.start(self.server)

    def stop(self) -> None:
        self.renders.stop()
        if self.server is not None:
            self.server.stop()

    # ---- what the panels share ----------------------------------------------------------------
    def edit(self, action) -> None:
        """Run a `World` edit from a button: errors become notifications, then the browser is redrawn."""
        self.guard(action)
        self.redraw()
        self.renders.invalidate()

    def guard(self, action):
        try:
            return action()
        except (SpatialError, ValueError, KeyError) as e:
            self.notify(str(e))

    def set_preview(self, preview: dict[str, dict[str, torch.Tensor]]) -> None:
        """Draw these parameters instead of the named layers' own (a colour grade before it is applied)."""
        if not preview and not self.preview:
            return
        self.preview = preview
        self._preview_version += 1
        self.redraw()

    def notify(self, text: str) -> None:
        for client in self.server.get_clients().values():
            client.add_notification("spatial", text, auto_close_seconds=6.0)

    def shown_model(self) -> TrainedModel:
        """What the viewer shows, as a model: the server-side one (a NeRF), else the visible splat layers."""
        from spatial.trained import SplatModel

        if self.model is not None:
            return self.model
        return SplatModel(self.world.world_params(), self.out, background=self.background)

    # ---- drawing ----------------------------------------------------------------------------
    def redraw(self) -> None:
        """Send the splat layers to the browser again if the world changed since the last time."""
        with self._lock:
            version = (self.world.version, self._preview_version)
            if self._drawn_version == version:
                return
            for handle in self._layer_handles.values():
                handle.remove()
            self._layer_handles = {}
            for i, layer in enumerate(self.world.layers):
                if layer.count == 0:
                    continue
                wxyz, position, scale = pose_of(layer.transform)
                params = self.preview.get(layer.name, layer.params)
                if params["means"].shape[0] != layer.count:  # a preview of an older world
                    params = layer.params
                self._layer_handles[layer.name] = self.server.scene.add_gaussian_splats(
                    f"/layers/{i:03d}", **splat_arrays(params, self.world.selection[layer.name]),
                    wxyz=wxyz, position=position, scale=scale,
                    visible=layer.visible and self.renders.mode == "browser")
            changed = self._drawn_version[0] != self.world.version
            self._drawn_version = version
            self._status()
        if changed:
            for callback in self.on_change:
                callback()

    def set_model(self, model: TrainedModel) -> None:
        """Show `model` (e.g. a `TrainedNerf`) through server-side renders."""
        with self._lock:
            self.model = model
            self._model_version += 1
            if self.server is not None:
                self._status()
            if self.renders.mode == "browser" and self._mode_dropdown is not None:
                self._mode_dropdown.value = "colour"  # its on_update switches the mode
                self.renders.mode = "colour"

    def _draw_static(self) -> None:
        for layer in self.static:
            if layer.faces is not None:
                import trimesh

                mesh = trimesh.Trimesh(layer.vertices, layer.faces, vertex_colors=layer.colors, process=False)
                self.server.scene.add_mesh_trimesh(f"/static/{layer.name}", mesh)
            else:
                colors = layer.colors if layer.colors is not None else np.full((len(layer.vertices), 3), 200, np.uint8)
                self.server.scene.add_point_cloud(f"/static/{layer.name}", layer.vertices, colors, point_size=0.01)

    def show_cameras(self, visible: bool) -> None:
        for frustum in self._frustums:
            frustum.visible = visible

    def _draw_cameras(self) -> None:
        if self.cameras is None:
            return
        cams = self.cameras
        # small beside the scene: a fraction of the cameras' distance to what they look at
        center = scene_frame(cams)[0].float()
        size = 0.04 * float((cams.centers - center).norm(dim=-1).median()) or 0.05
        fovs = cams.fov_y
        for i in range(len(cams)):
            frustum = self.server.scene.add_camera_frustum(
                f"/cameras/{i:04d}", fov=float(fovs[i]), aspect=float(cams.width[i] / cams.height[i]), scale=size,
                wxyz=rotmat_to_quat(cams.cam_to_world[i, :3, :3]).numpy(), position=cams.cam_to_world[i, :3, 3].numpy(),
                color=(90, 90, 200), image=None if self.thumbnails is None else self.thumbnails[i])
            self._frustums.append(frustum)

            @frustum.on_click
            def _(event, frustum=frustum) -> None:
                event.client.camera.wxyz = frustum.wxyz
                event.client.camera.position = frustum.position

    def _build_view_gui(self) -> None:
        gui = self.server.gui
        self._status_text = gui.add_markdown("")
        start_mode = "browser" if self.model is None else "colour"
        self.renders.mode = start_mode
        mode = self._mode_dropdown = gui.add_dropdown(
            "Render", MODES, initial_value=start_mode,
            hint="browser: splats drawn by your browser (RGB only); the others are rendered on the server "
                 "with our renderer (SH for splats; the only way to see a NeRF), streamed as images")

        @mode.on_update
        def _(_) -> None:
            self.renders.mode = mode.value
            for name, handle in self._layer_handles.items():
                handle.visible = mode.value == "browser" and self.world.layer(name).visible
            if mode.value == "browser":
                self.server.scene.set_background_image(None)
            self.renders.invalidate()

        cameras = gui.add_checkbox("Show cameras", True, hint="training cameras; click one to fly there")
        cameras.on_update(lambda _: self.show_cameras(cameras.value))

    def _status(self) -> None:
        if self.model is not None and not self.world.layers:
            self._status_text.content = f"**Model** {self.model.summary()}, rendered on the server"
            return
        counts = ", ".join(f"{layer.name}: {layer.count:,}" for layer in self.world.layers)
        self._status_text.content = f"**Gaussians** {counts}  \n**Selected** {self.world.selected_count():,}"

    # ---- the first view ---------------------------------------------------------------------
    def start_view(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(position, look-at point, vertical fov) of the first view: like a typical training view, from the
        median training position towards the point all cameras look at (upright: see `self.up`)."""
        if self.cameras is None:
            return None
        center = scene_frame(self.cameras)[0]
        eye = self.cameras.centers.double().median(0).values
        return eye.numpy(), center.numpy(), float(self.cameras.fov_y[0])

    def _on_connect(self, client) -> None:
        view = self.start_view()
        if view is not None:
            eye, target, fov = view
            with client.atomic():
                if self.up is not None:
                    client.camera.up_direction = self.up
                client.camera.fov = fov
                client.camera.position = eye
                client.camera.look_at = target
