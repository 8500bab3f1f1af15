"""The viser app: splat layers drawn in the browser, training cameras, editing, camera paths, and
server-side renders of colour, depth or alpha with our own renderer.

    app = ViewerApp(world, cameras=scene.cameras, thumbnails=..., out=Path("edited.ply"))
    app.start(host="127.0.0.1", port=8080)   # then open app.url

Everything the buttons do is a method of `World` (see world.py), so it is tested without a browser.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import torch
from spatial_viewer.layers import StaticLayer
from spatial_viewer.world import World

from spatial.camera_path import CameraPath, interpolate_keyframes, save_camera_path, scene_frame
from spatial.cameras import Cameras
from spatial.errors import SpatialError
from spatial.render import RenderOptions
from spatial.render.sh import sh_to_rgb
from spatial.splats.model import render_splats, sh_degree_of
from spatial.transforms import quat_to_rotmat, rotmat_to_quat

SELECTED_RGB = np.array([1.0, 0.45, 0.0], np.float32)  # selection highlight (orange)
MOVING_MAX_SIDE = 256  # server renders this small while the camera moves, full size once it rests
# a NeRF renders ray by ray, far slower than splats on a CPU: smaller while moving, capped at rest
NERF_MOVING_MAX_SIDE, NERF_REST_MAX_SIDE = 96, 512


def splat_arrays(params: dict[str, torch.Tensor], selected: torch.Tensor) -> dict[str, np.ndarray]:
    """viser's inputs: centres, covariances R S^2 R^T, RGB (selection highlighted) and opacities."""
    R = quat_to_rotmat(params["quats"])  # [N, 3, 3]
    S2 = torch.exp(2 * params["scales"])  # [N, 3]
    cov = (R * S2[:, None, :]) @ R.transpose(1, 2)
    rgb = sh_to_rgb(params["sh0"][:, 0]).clamp(0, 1).numpy()
    rgb[selected.numpy()] = 0.3 * rgb[selected.numpy()] + 0.7 * SELECTED_RGB
    return {"centers": params["means"].numpy(), "covariances": cov.numpy(), "rgbs": rgb,
            "opacities": torch.sigmoid(params["opacities"])[:, None].numpy()}


def pose_of(T: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float]:
    """(wxyz, position, uniform scale) of a similarity [4, 4]."""
    s = float(torch.linalg.det(T[:3, :3]).abs() ** (1 / 3))
    return rotmat_to_quat(T[:3, :3] / s).numpy(), T[:3, 3].numpy(), s


def client_camera(camera, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV `cam_to_world [4, 4]` and `K [3, 3]` of a browser camera (viser uses OpenCV axes too), on
    the CPU: a renderer moves them to its model's device."""
    c2w = torch.eye(4, device="cpu")
    c2w[:3, :3] = quat_to_rotmat(torch.tensor(np.asarray(camera.wxyz), dtype=torch.float32, device="cpu"))
    c2w[:3, 3] = torch.tensor(np.asarray(camera.position), dtype=torch.float32, device="cpu")
    f = 0.5 * height / np.tan(camera.fov / 2)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float32, device="cpu")
    return c2w, K


class ViewerApp:
    def __init__(self, world: World, static: list[StaticLayer] | None = None, cameras: Cameras | None = None,
                 thumbnails: list[np.ndarray] | None = None, out: Path = Path("edited.ply"),
                 background: tuple[float, float, float] = (0.0, 0.0, 0.0), up: np.ndarray | None = None,
                 editable: bool = True):
        self.editable = editable  # False while a model trains: its next refresh would undo any edit
        self.world, self.static, self.cameras, self.thumbnails = world, static or [], cameras, thumbnails
        self.out, self.background, self.up = Path(out), background, up
        self.keyframes: list[tuple[torch.Tensor, float]] = []  # (cam_to_world [4, 4], vertical fov degrees)
        self.server = None
        self._drawn_version = -1
        self._render_mode = "browser"
        self.model = None  # a model only the server can draw (a NeRF), shown instead of the splat layers
        self._mode_dropdown = None
        self._layer_handles: dict = {}
        self._model_version = 0
        self._last_render: dict = {}  # client id -> (camera key, time, rendered at full size)
        self._lock = threading.RLock()
        self._stop = threading.Event()

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 8080) -> None:
        import viser
        from spatial_viewer.origin import own_origin_only

        with own_origin_only(host):  # a page of another site must not drive this viewer
            self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.url = f"http://{host}:{self.server.get_port()}"
        if self.up is not None:
            self.server.scene.set_up_direction(tuple(float(x) for x in self.up))
        self._draw_static()
        self._draw_cameras()
        self._build_gui()
        self.redraw()
        self.server.on_client_connect(self._on_connect)
        threading.Thread(target=self._render_loop, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.stop()

    # ---- drawing ----------------------------------------------------------------------------
    def redraw(self) -> None:
        """Send the splat layers to the browser again if the world changed since the last time."""
        with self._lock:
            if self._drawn_version == self.world.version:
                return
            for handle in getattr(self, "_layer_handles", {}).values():
                handle.remove()
            self._layer_handles = {}
            for layer in self.world.layers:
                if layer.count == 0:
                    continue
                wxyz, position, scale = pose_of(layer.transform)
                self._layer_handles[layer.name] = self.server.scene.add_gaussian_splats(
                    f"/layers/{layer.name}", **splat_arrays(layer.params, self.world.selection[layer.name]),
                    wxyz=wxyz, position=position, scale=scale,
                    visible=layer.visible and self._render_mode == "browser")
            self._drawn_version = self.world.version
            self._status()

    def set_model(self, model) -> None:
        """Show `model` (anything with `render_frames`, e.g. a `TrainedNerf`) through server-side renders."""
        with self._lock:
            self.model = model
            self._model_version += 1
            if self.server is not None:
                self._status()
            if self._render_mode == "browser" and self._mode_dropdown is not None:
                self._mode_dropdown.value = "colour"  # its on_update switches the mode
                self._render_mode = "colour"

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
        for frustum in getattr(self, "_frustums", []):
            frustum.visible = visible

    def _draw_cameras(self) -> None:
        self._frustums = []
        if self.cameras is None:
            return
        cams = self.cameras
        # small beside the scene: a fraction of the cameras' distance to what they look at
        center = scene_frame(cams)[0].float()
        size = 0.04 * float((cams.centers - center).norm(dim=-1).median()) or 0.05
        for i in range(len(cams)):
            h, w = int(cams.height[i]), int(cams.width[i])
            fov = float(2 * np.arctan(0.5 * h / float(cams.K[i, 1, 1])))
            wxyz = rotmat_to_quat(cams.cam_to_world[i, :3, :3]).numpy()
            frustum = self.server.scene.add_camera_frustum(
                f"/cameras/{i:04d}", fov=fov, aspect=w / h, scale=size, wxyz=wxyz,
                position=cams.cam_to_world[i, :3, 3].numpy(), color=(90, 90, 200),
                image=None if self.thumbnails is None else self.thumbnails[i])
            self._frustums.append(frustum)

            @frustum.on_click
            def _(event, frustum=frustum) -> None:
                event.client.camera.wxyz = frustum.wxyz
                event.client.camera.position = frustum.position

    # ---- GUI ----------------------------------------------------------------------------------
    def _build_gui(self) -> None:
        gui = self.server.gui
        self._status_text = gui.add_markdown("")
        start_mode = "browser" if self.model is None else "colour"
        self._render_mode = start_mode
        mode = self._mode_dropdown = gui.add_dropdown(
            "Render", ("browser", "colour", "depth", "alpha"), initial_value=start_mode,
            hint="browser: splats drawn by your browser (RGB only); the others are rendered on the server "
                 "with our renderer (SH for splats; the only way to see a NeRF), streamed as images")

        @mode.on_update
        def _(_) -> None:
            self._render_mode = mode.value
            for handle in self._layer_handles.values():
                handle.visible = mode.value == "browser"
            if mode.value == "browser":
                self.server.scene.set_background_image(None)
            self._last_render = {}

        cameras = gui.add_checkbox("Show cameras", True, hint="training cameras; click one to fly there")
        cameras.on_update(lambda _: self.show_cameras(cameras.value))

        if self.editable:
            self._build_editing_gui()
        self._build_path_gui()

    def _build_editing_gui(self) -> None:
        gui, world = self.server.gui, self.world
        with gui.add_folder("Select"):
            select_mode = gui.add_dropdown("Mode", ("set", "add", "subtract", "intersect"), initial_value="set")
            self._box = self.server.scene.add_transform_controls("/selection_box", scale=0.5, visible=False)
            box_size = gui.add_slider("Box size", 0.01, 10.0, 0.01, 1.0)
            show_box = gui.add_checkbox("Show box", False)
            self._box_mesh = None

            def draw_box(*_):
                self._box.visible = show_box.value
                if self._box_mesh is not None:
                    self._box_mesh.remove()
                s = box_size.value
                self._box_mesh = self.server.scene.add_box("/selection_box/shape", color=(255, 140, 0),
                                                           dimensions=(s, s, s), opacity=0.25,
                                                           visible=show_box.value)

            box_size.on_update(draw_box)
            show_box.on_update(draw_box)
            draw_box()
            self._box_size = box_size

            select_box = gui.add_button("Select in box")
            select_box.on_click(lambda _: self._edit(lambda: world.select_oriented_box(
                self.box_to_world(), torch.full((3,), box_size.value / 2), select_mode.value)))
            select_sphere = gui.add_button("Select in sphere", hint="the sphere inside the box")
            select_sphere.on_click(lambda _: self._edit(lambda: world.select_sphere(
                self.box_to_world()[:3, 3], box_size.value / 2, select_mode.value)))
            opacity = gui.add_slider("Opacity below", 0.0, 1.0, 0.01, 0.1)
            gui.add_button("Select faint").on_click(
                lambda _: self._edit(lambda: world.select_opacity_below(opacity.value, select_mode.value)))
            scale = gui.add_number("Scale above", 0.1, min=0.0, step=0.01)
            gui.add_button("Select large").on_click(
                lambda _: self._edit(lambda: world.select_scale_above(scale.value, select_mode.value)))
            gui.add_button("Invert selection").on_click(lambda _: self._edit(world.invert_selection))
            gui.add_button("Clear selection").on_click(lambda _: self._edit(world.clear_selection))

        with gui.add_folder("Edit"):
            gui.add_button("Delete selection", color="red").on_click(lambda _: self._edit(world.delete_selected))
            gui.add_button("Keep selection").on_click(lambda _: self._edit(world.keep_selected))
            gui.add_button("Crop to box").on_click(lambda _: self._edit(lambda: world.crop_box(
                self.box_to_world()[:3, 3] - box_size.value / 2, self.box_to_world()[:3, 3] + box_size.value / 2)))
            tint = gui.add_rgb("Tint", (255, 0, 0))
            strength = gui.add_slider("Tint strength", 0.0, 1.0, 0.05, 0.5)
            gui.add_button("Tint selection").on_click(lambda _: self._edit(
                lambda: world.tint_selected(tuple(c / 255 for c in tint.value), strength.value)))
            gui.add_button("Undo").on_click(lambda _: self._edit(world.undo))
            gui.add_button("Redo").on_click(lambda _: self._edit(world.redo))

        with gui.add_folder("Layers"):
            names = [l.name for l in world.layers] or ["(none)"]
            self._layer_pick = gui.add_dropdown("Layer", tuple(names), initial_value=names[0])
            move = gui.add_checkbox("Move layer (gizmo)", False)
            self._gizmo = None

            @move.on_update
            def _(_) -> None:
                if self._gizmo is not None:
                    self._gizmo.remove()
                    self._gizmo = None
                if move.value and world.layers:
                    self._attach_gizmo(self._layer_pick.value)

            gui.add_button("Merge layers").on_click(lambda _: self._edit(world.merge_layers))
            gui.add_button("Save PLY", hint=f"writes {self.out}").on_click(lambda _: self._save())
            gui.add_button("Save world", hint="the layers and their transforms").on_click(
                lambda _: self._save_world())

    def _build_path_gui(self) -> None:
        gui = self.server.gui
        with gui.add_folder("Camera path"):
            self._fov = gui.add_slider("FOV (degrees)", 10.0, 120.0, 1.0, 50.0)
            self._seconds = gui.add_number("Duration (s)", 4.0, min=0.5, step=0.5)
            self._fps = gui.add_number("FPS", 30, min=1, max=120, step=1)
            self._path_text = gui.add_markdown("no keyframes")
            gui.add_button("Add keyframe").on_click(lambda e: self.add_keyframe(e.client.camera))
            gui.add_button("Delete last keyframe").on_click(lambda _: self._drop_keyframe())
            gui.add_button("Clear keyframes").on_click(lambda _: self._clear_keyframes())
            gui.add_button("Preview").on_click(lambda e: threading.Thread(
                target=self.preview, args=(e.client,), daemon=True).start())
            gui.add_button("Save path").on_click(lambda _: self._guard(self.save_path))
            gui.add_button("Render video").on_click(lambda _: threading.Thread(
                target=self._guard, args=(self.render_video,), daemon=True).start())

    def box_to_world(self) -> torch.Tensor:
        T = torch.eye(4)
        T[:3, :3] = quat_to_rotmat(torch.tensor(np.asarray(self._box.wxyz), dtype=torch.float32))
        T[:3, 3] = torch.tensor(np.asarray(self._box.position), dtype=torch.float32)
        return T

    def _attach_gizmo(self, name: str) -> None:
        layer = self.world.layer(name)
        wxyz, position, _ = pose_of(layer.transform)
        gizmo = self.server.scene.add_transform_controls("/layer_gizmo", scale=1.0, wxyz=wxyz, position=position)
        self._gizmo = gizmo

        @gizmo.on_drag_end
        def _(_) -> None:
            s = pose_of(self.world.layer(name).transform)[2]
            T = torch.eye(4)
            T[:3, :3] = s * quat_to_rotmat(torch.tensor(np.asarray(gizmo.wxyz), dtype=torch.float32))
            T[:3, 3] = torch.tensor(np.asarray(gizmo.position), dtype=torch.float32)
            self._edit(lambda: self.world.set_transform(name, T))

    def _edit(self, action) -> None:
        self._guard(action)
        self.redraw()
        self._last_render = {}

    def _guard(self, action):
        try:
            return action()
        except (SpatialError, ValueError, KeyError) as e:
            self._notify(str(e))

    def _notify(self, text: str) -> None:
        for client in self.server.get_clients().values():
            client.add_notification("spatial", text, auto_close_seconds=6.0)

    def _status(self) -> None:
        if self.model is not None and not self.world.layers:
            self._status_text.content = f"**Model** {self.model.summary()}, rendered on the server"
            return
        counts = ", ".join(f"{l.name}: {l.count:,}" for l in self.world.layers)
        self._status_text.content = f"**Gaussians** {counts}  \n**Selected** {self.world.selected_count():,}"

    def _save(self) -> None:
        def save():
            n = self.world.save_ply(self.out)
            self._notify(f"saved {n:,} Gaussians to {self.out}")
        self._guard(save)

    def _save_world(self) -> None:
        path = self.out.with_suffix(".world.json")
        self._guard(lambda: (self.world.save_world(path), self._notify(f"saved {path}")))

    # ---- camera paths -------------------------------------------------------------------------
    def add_keyframe(self, camera) -> None:
        c2w, _ = client_camera(camera, 64, 64)
        self.keyframes.append((c2w, float(self._fov.value)))
        i = len(self.keyframes) - 1
        self.server.scene.add_camera_frustum(f"/keyframes/{i:03d}", fov=np.radians(self.keyframes[i][1]),
                                             aspect=4 / 3, scale=0.15, color=(255, 120, 0),
                                             wxyz=rotmat_to_quat(c2w[:3, :3]).numpy(), position=c2w[:3, 3].numpy())
        self._path_text.content = f"{len(self.keyframes)} keyframes"

    def _drop_keyframe(self) -> None:
        if self.keyframes:
            self.keyframes.pop()
            self.server.scene.remove_by_name(f"/keyframes/{len(self.keyframes):03d}")
            self._path_text.content = f"{len(self.keyframes)} keyframes"

    def _clear_keyframes(self) -> None:
        while self.keyframes:
            self._drop_keyframe()

    def camera_path(self, width: int = 640, height: int = 480) -> CameraPath:
        if len(self.keyframes) < 2:
            raise SpatialError(f"a camera path needs at least two keyframes; add {2 - len(self.keyframes)} more "
                               "with 'Add keyframe'")
        fps = float(self._fps.value)
        frames = max(2, round(float(self._seconds.value) * fps))
        c2w = torch.stack([k[0] for k in self.keyframes])
        fovs = torch.tensor([k[1] for k in self.keyframes])
        return interpolate_keyframes(c2w, fovs, frames, width, height, fps)

    def save_path(self) -> Path:
        file = self.out.with_name(self.out.stem + "_path.json")
        save_camera_path(self.camera_path(), file)
        self._notify(f"saved the camera path to {file}")
        return file

    def render_video(self) -> Path:
        from spatial.render_path import render_camera_path
        from spatial.runs import SplatModel

        path = self.camera_path()
        model = self.model if self.model is not None else \
            SplatModel(self.world.world_params(), self.out, background=self.background)
        file = self.out.with_name(self.out.stem + "_path.mp4")
        render_camera_path(model, path, file)
        self._notify(f"rendered {len(path)} frames to {file}")
        return file

    def preview(self, client) -> None:
        path = self.camera_path()
        for i in range(len(path)):
            c2w = path.cam_to_world[i].float()
            with client.atomic():
                client.camera.wxyz = rotmat_to_quat(c2w[:3, :3]).numpy()
                client.camera.position = c2w[:3, 3].numpy()
                client.camera.fov = float(np.radians(path.fov_y_degrees[i]))
            time.sleep(1 / path.fps)

    # ---- server-side rendering ----------------------------------------------------------------
    def start_view(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(position, look-at point, vertical fov) of the first view: like a typical training view, from the
        median training position towards the point all cameras look at (upright: see `self.up`)."""
        if self.cameras is None:
            return None
        center = scene_frame(self.cameras)[0]
        eye = self.cameras.centers.double().median(0).values
        fov = float(2 * np.arctan(0.5 * float(self.cameras.height[0]) / float(self.cameras.K[0, 1, 1])))
        return eye.numpy(), center.numpy(), fov

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

    def render_view(self, camera, width: int, height: int, mode: str) -> np.ndarray:
        """Our renderer at a browser camera: `[H, W, 3]` uint8 colour, colour-mapped depth or alpha."""
        from spatial.render_path import frame_image

        c2w, K = client_camera(camera, width, height)
        if self.model is not None:
            cams = Cameras(c2w[None], K[None], width, height)
            with torch.no_grad():
                background = torch.tensor(self.background, dtype=torch.float32, device="cpu")  # moved by the model
                out = next(iter(self.model.render_frames(cams, background)))
            return frame_image(out, "rgb" if mode == "colour" else mode)
        params = self.world.world_params()
        device = params["means"].device
        with torch.no_grad():
            out = render_splats(params, torch.linalg.inv(c2w)[None].to(device), K[None].to(device), width, height,
                                sh_degree_of(params), torch.tensor(self.background, device=device), RenderOptions())
        return frame_image(out, "rgb" if mode == "colour" else mode)

    def _render_loop(self) -> None:
        """While a server mode is on: a small render as soon as the camera moves, full size once it rests."""
        while not self._stop.wait(0.05):
            if self._render_mode == "browser" or self.server is None:
                continue
            for client in list(self.server.get_clients().values()):
                cam = client.camera
                key = (tuple(np.round(cam.wxyz, 5)), tuple(np.round(cam.position, 5)), round(cam.fov, 5),
                       self._render_mode, self.world.version, self._model_version)
                last_key, last_time, full = self._last_render.get(client.client_id, (None, 0.0, False))
                W, H = max(int(cam.image_width or 640), 16), max(int(cam.image_height or 480), 16)
                moving_side = MOVING_MAX_SIDE if self.model is None else NERF_MOVING_MAX_SIDE
                if self.model is not None:
                    rest = min(1.0, NERF_REST_MAX_SIDE / max(W, H))
                    W, H = max(round(W * rest), 8), max(round(H * rest), 8)
                if key != last_key:
                    scale = min(1.0, moving_side / max(W, H))
                    size, done = (max(round(W * scale), 8), max(round(H * scale), 8)), scale == 1.0
                    self._last_render[client.client_id] = (key, time.time(), done)
                elif not full and time.time() - last_time > 0.3:
                    size = (W, H)
                    self._last_render[client.client_id] = (key, last_time, True)
                else:
                    continue
                try:
                    image = self.render_view(cam, size[0], size[1], self._render_mode)
                    client.scene.set_background_image(image, format="jpeg")
                except SpatialError:
                    client.scene.set_background_image(None)
