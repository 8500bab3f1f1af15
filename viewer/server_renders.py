"""Server-side renders: while the Render control is on colour, depth or alpha, each browser's view is rendered
with our renderer and sent as its background image, small as soon as the camera moves and full size once it rests.

    renders = ServerRenders(app.shown_model, (0, 0, 0), state=lambda: world.version, slow_model=lambda: False)
    renders.start(server)        # a thread, until renders.stop()
    renders.mode = "depth"       # "browser" pauses it: the browser draws the splats itself

Renders go through the `TrainedModel` interface, so splats and NeRFs alike; a NeRF renders ray by ray, far slower
than splats on a CPU, so it renders smaller while moving and is capped at rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from spatial.cameras import Cameras
from spatial.errors import SpatialError
from spatial.trained import TrainedModel
from spatial_viewer.poses import client_camera

MODES = ("browser", "colour", "depth", "alpha")  # browser: drawn by the browser; the others here
MOVING_MAX_SIDE = 256  # longest side of a render while the camera moves (full size once it rests)
NERF_MOVING_MAX_SIDE, NERF_REST_MAX_SIDE = 96, 512  # a NeRF's, moving and at rest
REST_SECONDS = 0.3  # how long a camera keeps still before its full-size render


def render_size(width: int, height: int, moving: bool, slow_model: bool) -> tuple[int, int]:
    """The size to render a `width` x `height` browser view at, moving or at rest."""
    if slow_model:
        rest = min(1.0, NERF_REST_MAX_SIDE / max(width, height))
        width, height = max(round(width * rest), 8), max(round(height * rest), 8)
    if not moving:
        return width, height
    scale = min(1.0, (NERF_MOVING_MAX_SIDE if slow_model else MOVING_MAX_SIDE) / max(width, height))
    return max(round(width * scale), 8), max(round(height * scale), 8)


class ServerRenders:
    def __init__(self, shown_model: Callable[[], TrainedModel], background: tuple[float, float, float],
                 state: Callable[[], tuple], slow_model: Callable[[], bool]):
        """`shown_model`: what to render now; `state`: changes whenever what it shows does (versions), so a view
        is rendered again; `slow_model`: whether it renders ray by ray (a NeRF), so smaller."""
        self.shown_model, self.background, self.state, self.slow_model = shown_model, background, state, slow_model
        self.mode = "browser"
        self._last: dict = {}  # client id -> (what was rendered, when, whether at full size)
        self._stop = threading.Event()

    def start(self, server) -> None:
        threading.Thread(target=self._run, args=(server,), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def invalidate(self) -> None:
        """Render every view again (after an edit)."""
        self._last = {}

    def render_view(self, camera, width: int, height: int, mode: str) -> np.ndarray:
        """Our renderer at a browser camera: `[H, W, 3]` uint8 colour, colour-mapped depth or alpha."""
        from spatial.render_path import frame_image

        c2w, K = client_camera(camera, width, height)
        background = torch.tensor(self.background, dtype=torch.float32, device="cpu")  # moved by the model
        with torch.no_grad():
            out = next(iter(self.shown_model().render_frames(Cameras(c2w[None], K[None], width, height), background)))
        return frame_image(out, "rgb" if mode == "colour" else mode)

    def _run(self, server) -> None:
        while not self._stop.wait(0.05):
            if self.mode != "browser":
                self.tick(list(server.get_clients().values()))

    def tick(self, clients: list) -> None:
        """One pass over the browsers: a small render for each whose camera moved, a full-size one for each whose
        camera has rested since its last small one."""
        slow_model = self.slow_model()
        for client in clients:
            cam = client.camera
            key = (tuple(np.round(cam.wxyz, 5)), tuple(np.round(cam.position, 5)), round(cam.fov, 5), self.mode,
                   self.state())
            last_key, last_time, full = self._last.get(client.client_id, (None, 0.0, False))
            W, H = max(int(cam.image_width or 640), 16), max(int(cam.image_height or 480), 16)
            if key != last_key:
                size = render_size(W, H, moving=True, slow_model=slow_model)
                self._last[client.client_id] = (key, time.time(), size == render_size(W, H, False, slow_model))
            elif not full and time.time() - last_time > REST_SECONDS:
                size = render_size(W, H, moving=False, slow_model=slow_model)
                self._last[client.client_id] = (key, last_time, True)
            else:
                continue
            try:
                client.scene.set_background_image(self.render_view(cam, *size, self.mode), format="jpeg")
            except SpatialError:
                client.scene.set_background_image(None)
