"""The viser app: splat layers drawn in the browser, training cameras, the GUI panels (viewer/panels/),
and server-side renders of colour, depth or alpha with our own renderer (server_renders.py).

    app = ViewerApp(world, cameras=scene.cameras, thumbnails=..., out=Path("edited.ply"))
    app.start(host="127.0.0.1", port=8080)   # then open app.url

Everything the buttons do is a method of `World` (see world.py), so it is tested without a browser.
Server-side renders go through the `TrainedModel` interface for splats and NeRFs alike (`shown_model`).

One file: what the browser is sent, in order: the layers (with their level of detail: a preview, the probe
that waits for the browser to draw it, the levels the camera needs, the merged levels as they are ready;
the choices themselves are viewer/lod.py's), the cameras, the view controls and the status.
"""

from __future__ import annotations

import math
import threading
import time
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
from spatial_viewer.lod import LayerChunks, LodConfig, camera_levels, level_count, uniform_levels
from spatial_viewer.poses import pose_of
from spatial_viewer.server_renders import MODES, ServerRenders
from spatial_viewer.world import World

SELECTED_RGB = np.array([1.0, 0.45, 0.0], np.float32)  # selection highlight (orange)
LOD_POLL_SECONDS = 0.25  # how often the browsers' cameras are read for the level of detail
LOD_REST_SECONDS = 0.3  # how long a camera keeps still before the levels it needs are sent
PROBE_SLOW_SECONDS = 1.0  # a browser that takes longer to draw the preview draws without a GPU (software WebGL)
PROBE_TIMEOUT_SECONDS = 60.0
PROBE_SETTLE = 2.0  # after the probe, wait this many times as long as it took before sending more


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
                 editable: bool = True, lod: LodConfig | None = None):
        self.editable = editable  # False while a model trains: its next refresh would undo any edit
        self.world, self.static, self.cameras, self.thumbnails = world, static or [], cameras, thumbnails
        self.out, self.background, self.up = Path(out), background, up
        self.server = None
        self.model: TrainedModel | None = None  # a model only the server can draw (a NeRF), shown instead of layers
        self.select = self.edit_panel = self.layers = self.paths = self.tools = self.colour = None  # the panels
        self.walk = None
        self.preview: dict[str, dict[str, torch.Tensor]] = {}  # layer name -> parameters drawn instead (colour)
        self.on_change: list = []  # called after each redraw that followed a change of the world
        self._preview_version = 0
        self._drawn_version = (-1, -1)
        self._mode_dropdown = None
        self._layer_handles: dict = {}  # layer name -> its frame node (the layer's pose); its chunks are children
        self.lod = lod or LodConfig()  # what is sent to the browser: viewer/lod.py
        self._chunks: dict[str, tuple[tuple, LayerChunks]] = {}  # layer name -> (what it was built from, chunks)
        self._levels: dict[str, np.ndarray] = {}  # layer name -> [C] level of each chunk as sent
        self._merged: dict[str, np.ndarray] = {}  # layer name -> [C] whether each chunk was sent merged
        self._merge_wanted = threading.Event()  # chunks are drawn as prefixes that merging would improve
        self._eye: np.ndarray | None = None  # [3] world position of the camera the levels follow (None: preview)
        self._stop_lod = threading.Event()
        self._ready_at: dict = {}  # browser id -> time.monotonic() from which its camera is followed
        self._slow: tuple[int, float] | None = None  # (Gaussians, seconds) a browser took to draw, when slow
        self.first_drawn: dict = {}  # browser id -> (time.monotonic(), Gaussians) when it had first drawn the world
        self._frustums: list = []
        self._threads: list[threading.Thread] = []
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
        from spatial_viewer.panels.walk import WalkPanel

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
        self.walk = WalkPanel(self)
        self.redraw()
        self.server.on_client_connect(self._on_connect)
        self.renders.start(self.server)
        self._threads = [threading.Thread(target=self._follow_cameras, daemon=True, name="viewer-lod"),
                         threading.Thread(target=self._merge_levels, daemon=True, name="viewer-lod-merge")]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop_lod.set()
        self._merge_wanted.set()
        self.renders.stop()
        if self.server is not None:
            self.server.stop()
        for thread in self._threads:  # a merge stops at its next check: not left running torch at exit
            thread.join(timeout=30)

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
            self._layer_handles, self._levels, self._merged = {}, {}, {}
            shown = [layer for layer in self.world.layers if layer.count and layer.visible]
            chunks = [self._chunks_of(layer) for layer in shown]
            names = {layer.name for layer in self.world.layers}
            self._chunks = {name: built for name, built in self._chunks.items() if name in names}
            for (i, layer), levels in zip(enumerate(shown), self._levels_for(shown, chunks)):
                wxyz, position, scale = pose_of(layer.transform)
                self._layer_handles[layer.name] = self.server.scene.add_frame(
                    f"/layers/{i:03d}", show_axes=False, wxyz=wxyz, position=position, scale=scale,
                    visible=self.renders.mode == "browser")
                self._send_chunks(layer, levels, range(len(levels)))
            changed = self._drawn_version[0] != self.world.version
            self._drawn_version = version
            self._status()
        if changed:
            for callback in self.on_change:
                callback()

    # ---- level of detail (viewer/lod.py) ------------------------------------------------------
    def _chunks_of(self, layer) -> LayerChunks:
        """The layer's chunks, built again only when its Gaussians changed (not for a selection)."""
        key = (id(layer.params["means"]), id(layer.params["opacities"]), id(layer.params["scales"]), layer.count)
        cached = self._chunks.get(layer.name)
        if cached is None or cached[0] != key:
            cached = self._chunks[layer.name] = (key, LayerChunks(layer.params, self.lod.chunk))
        return cached[1]

    def _levels_for(self, layers: list, chunks: list[LayerChunks]) -> list[np.ndarray]:
        """Per layer, its chunks' levels: a preview until a browser's camera is known, then what it needs."""
        if self._eye is None:
            return uniform_levels(chunks, min(self.lod.preview, self.lod.budget))
        eyes, scales = [], []
        for layer in layers:
            T = layer.transform.double()
            scale = float(T[:3, 0].norm())
            eyes.append(((T[:3, :3].T @ (torch.from_numpy(self._eye).double() - T[:3, 3])) / scale ** 2).numpy())
            scales.append(scale)
        return camera_levels(chunks, eyes, scales, self.lod.budget)

    def _send_chunks(self, layer, levels: np.ndarray, which) -> None:
        """Send (or replace) chunks `which` of `layer` at `levels` under the layer's frame node."""
        i = list(self._layer_handles).index(layer.name)
        chunks = self._chunks[layer.name][1]
        preview = self.preview.get(layer.name)
        if preview is not None and preview["means"].shape[0] != layer.count:  # a preview of an older world
            preview = None
        merged = self._merged.setdefault(layer.name, np.zeros(len(chunks), bool))
        for c in which:
            splats, lit, merged[c] = chunks.splats_at(c, int(levels[c]), preview, self.world.selection[layer.name])
            self.server.scene.add_gaussian_splats(f"/layers/{i:03d}/{c:04d}", **splat_arrays(splats, lit))
        self._levels[layer.name] = levels
        if any((levels > 0) & ~merged):
            self._merge_wanted.set()

    def drawn_count(self) -> int:
        """Gaussians sent to the browser now, all layers together."""
        with self._lock:
            return sum(int(level_count(self._chunks[name][1].sizes, levels).sum())
                       for name, levels in self._levels.items())

    def relevel(self, eye: np.ndarray | None = None) -> int:
        """Send the levels a camera at `eye` (`[3]`, world; default: the last one seen; none yet: the preview's)
        needs: only the chunks whose level changes or whose level has been merged since. Returns how many."""
        with self._lock:
            if eye is not None:
                self._eye = np.asarray(eye, np.float64)
            if self.server is None or self._stop_lod.is_set():
                return 0
            shown = [layer for layer in self.world.layers if layer.name in self._levels]
            sent = 0
            for layer, levels in zip(shown, self._levels_for(shown, [self._chunks[x.name][1] for x in shown])):
                chunks = self._chunks[layer.name][1]
                now_merged = np.array([m.get(lv) is not None for lv, m in zip(levels, chunks.merged)], bool)
                changed = np.flatnonzero((levels != self._levels[layer.name]) |
                                         ((levels > 0) & now_merged & ~self._merged[layer.name] &
                                          (layer.name not in self.preview)))
                if len(changed):
                    self._send_chunks(layer, levels, changed)
                    sent += len(changed)
            if sent:
                self._status()
            return sent

    def set_budget(self, budget: int) -> None:
        with self._lock:
            self.lod.budget = max(1, int(budget))
            self.relevel()

    def _probe(self, client) -> None:
        """Let a new browser draw what is sent before the levels its camera needs follow, so that the first
        picture is not held up behind them; time it, and say so in the panel if it is slow (no GPU)."""
        try:
            drawn, start = self.drawn_count(), time.monotonic()
            client.get_render(16, 16, transport_format="png", timeout=PROBE_TIMEOUT_SECONDS)
            seconds = time.monotonic() - start
        except Exception:  # noqa: BLE001 - the browser left or never drew (a hidden tab): follow it anyway
            seconds = 0.0
        with self._lock:
            if seconds > PROBE_SLOW_SECONDS and drawn:
                self._slow = (drawn, seconds)
            self.first_drawn[client.client_id] = (time.monotonic(), drawn)
            # the picture fades in over the next frames (viser's animation): give them the time the probe took
            self._ready_at[client.client_id] = time.monotonic() + PROBE_SETTLE * seconds
            self._status()

    def _merge_levels(self) -> None:
        """Merge the coarse levels of chunks drawn as prefixes, one chunk at a time, at low priority, and send
        each one merged as soon as it is (viewer/lod.py)."""
        import os

        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # this thread only (Linux)
        except (AttributeError, OSError):
            pass
        sent = time.monotonic()
        while self._merge_wanted.wait() and not self._stop_lod.is_set():
            if not all(self._is_ready(cid) for cid in self.server.get_clients()):  # the first picture first
                self._stop_lod.wait(LOD_POLL_SECONDS)
                continue
            with self._lock:
                todo = [(int(levels.max(initial=0) - levels[c]), name, self._chunks[name][1], c)
                        for name, levels in self._levels.items() for c in np.flatnonzero(levels > 0)
                        if int(levels[c]) not in self._chunks[name][1].merged[c]]
            if not todo:
                self._merge_wanted.clear()
                self.relevel()
                continue
            _, name, chunks, c = min(todo)  # the coarsest drawn first: it gains the most
            try:
                chunks.merge_levels(c, stop=self._stale(name, chunks))
            except Exception:  # noqa: BLE001 - a chunk that cannot merge keeps its prefix
                chunks.merged[c].update({lv: None for lv in range(1, int(chunks.coarsest[c]) + 1)})
            if time.monotonic() - sent > 1.0:  # what merged since, at most once a second
                self.relevel()
                sent = time.monotonic()

    def _stale(self, name: str, chunks: LayerChunks):
        """A test for merging to stop: the layer has been rebuilt (an edit) or the viewer stopped."""
        return lambda: self._stop_lod.is_set() or self._chunks.get(name, (None, None))[1] is not chunks

    def _is_ready(self, client_id) -> bool:
        return time.monotonic() >= self._ready_at.get(client_id, math.inf)

    def _follow_cameras(self) -> None:
        """Send the levels a browser's camera needs once it has kept still for `LOD_REST_SECONDS`."""
        seen: dict = {}  # client id -> (position, when it last moved)
        while not self._stop_lod.wait(LOD_POLL_SECONDS):
            try:
                now, resting = time.monotonic(), None
                for client_id, client in list(self.server.get_clients().items()):
                    if not self._is_ready(client_id):
                        continue
                    position = np.asarray(client.camera.position, np.float64)
                    last = seen.get(client_id)
                    if last is None or not np.allclose(last[0], position):
                        seen[client_id] = (position, now)
                    elif now - last[1] >= LOD_REST_SECONDS and (self._eye is None or
                                                                not np.allclose(self._eye, position)):
                        resting = position
                if resting is not None:
                    self.relevel(resting)
            except Exception:  # noqa: BLE001 - a client that left mid-read; the next poll sees the others
                continue

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
            for handle in self._layer_handles.values():  # hidden layers are not sent at all
                handle.visible = mode.value == "browser"
            if mode.value == "browser":
                self.server.scene.set_background_image(None)
            self.renders.invalidate()

        budget = gui.add_number(
            "Splat budget", self.lod.budget, min=1000, step=1000,
            hint="most Gaussians sent to the browser: near the camera in full, far away fewer (level of detail). "
                 "A browser that draws without a GPU wants about 50,000")
        budget.on_update(lambda _: self.set_budget(int(budget.value)))
        cameras = gui.add_checkbox("Show cameras", True, hint="training cameras; click one to fly there")
        cameras.on_update(lambda _: self.show_cameras(cameras.value))

    def _status(self) -> None:
        if self.model is not None and not self.world.layers:
            self._status_text.content = f"**Model** {self.model.summary()}, rendered on the server"
            return
        counts = ", ".join(f"{layer.name}: {layer.count:,}" for layer in self.world.layers)
        total, drawn = sum(layer.count for layer in self.world.layers if layer.visible), self.drawn_count()
        lod = f"  \n**Drawn by the browser** {drawn:,} (level of detail)" if drawn < total else ""
        if self._slow is not None and drawn > self._slow[0]:
            lod += (f"  \nA browser took {self._slow[1]:.1f} s to draw {self._slow[0]:,} Gaussians (no GPU?): "
                    "a lower splat budget keeps it responsive")
        self._status_text.content = f"**Gaussians** {counts}  \n**Selected** {self.world.selected_count():,}{lod}"

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
        threading.Thread(target=self._probe, args=(client,), daemon=True, name="viewer-probe").start()
        view = self.start_view()
        if view is not None:
            eye, target, fov = view
            with client.atomic():
                if self.up is not None:
                    client.camera.up_direction = self.up
                client.camera.fov = fov
                client.camera.position = eye
                client.camera.look_at = target
