"""The Camera path panel: keyframes from the browser's camera, a preview, the path as nerfstudio JSON, and
a video rendered with our renderer along it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import torch

from spatial.camera_path import CameraPath, interpolate_keyframes, save_camera_path
from spatial.errors import SpatialError
from spatial.transforms import rotmat_to_quat
from spatial_viewer.poses import client_camera


class CameraPathPanel:
    def __init__(self, app):
        gui = app.server.gui
        self.app = app
        self.keyframes: list[tuple[torch.Tensor, float]] = []  # (cam_to_world [4, 4], vertical fov degrees)
        with gui.add_folder("Camera path"):
            self.fov = gui.add_slider("FOV (degrees)", 10.0, 120.0, 1.0, 50.0)
            self.seconds = gui.add_number("Duration (s)", 4.0, min=0.5, step=0.5)
            self.fps = gui.add_number("FPS", 30, min=1, max=120, step=1)
            self._text = gui.add_markdown("no keyframes")
            gui.add_button("Add keyframe").on_click(lambda e: self.add_keyframe(e.client.camera))
            gui.add_button("Delete last keyframe").on_click(lambda _: self.drop_keyframe())
            gui.add_button("Clear keyframes").on_click(lambda _: self.clear())
            gui.add_button("Preview").on_click(lambda e: threading.Thread(
                target=self.preview, args=(e.client,), daemon=True).start())
            gui.add_button("Save path").on_click(lambda _: app.guard(self.save_path))
            gui.add_button("Render video").on_click(lambda _: threading.Thread(
                target=app.guard, args=(self.render_video,), daemon=True).start())

    def add_keyframe(self, camera) -> None:
        c2w, _ = client_camera(camera, 64, 64)
        self.keyframes.append((c2w, float(self.fov.value)))
        i = len(self.keyframes) - 1
        self.app.server.scene.add_camera_frustum(
            f"/keyframes/{i:03d}", fov=np.radians(self.keyframes[i][1]), aspect=4 / 3, scale=0.15,
            color=(255, 120, 0), wxyz=rotmat_to_quat(c2w[:3, :3]).numpy(), position=c2w[:3, 3].numpy())
        self._text.content = f"{len(self.keyframes)} keyframes"

    def drop_keyframe(self) -> None:
        if self.keyframes:
            self.keyframes.pop()
            self.app.server.scene.remove_by_name(f"/keyframes/{len(self.keyframes):03d}")
            self._text.content = f"{len(self.keyframes)} keyframes"

    def clear(self) -> None:
        while self.keyframes:
            self.drop_keyframe()

    def camera_path(self, width: int = 640, height: int = 480) -> CameraPath:
        if len(self.keyframes) < 2:
            raise SpatialError(f"a camera path needs at least two keyframes; add {2 - len(self.keyframes)} more "
                               "with 'Add keyframe'")
        fps = float(self.fps.value)
        frames = max(2, round(float(self.seconds.value) * fps))
        c2w = torch.stack([k[0] for k in self.keyframes])
        fovs = torch.tensor([k[1] for k in self.keyframes], device="cpu")
        return interpolate_keyframes(c2w, fovs, frames, width, height, fps)

    def save_path(self) -> Path:
        file = self.app.out.with_name(self.app.out.stem + "_path.json")
        save_camera_path(self.camera_path(), file)
        self.app.notify(f"saved the camera path to {file}")
        return file

    def render_video(self) -> Path:
        from spatial.render_path import render_camera_path

        path = self.camera_path()
        file = self.app.out.with_name(self.app.out.stem + "_path.mp4")
        render_camera_path(self.app.shown_model(), path, file)
        self.app.notify(f"rendered {len(path)} frames to {file}")
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
