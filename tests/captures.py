"""Synthetic captures for the processing and interop tests: photos of a built-in scene with its cameras held
back, and a video of a sideways dolly in front of the facade with some frames blurred on purpose."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageFilter

from spatial import load_scene
from spatial.cameras import Cameras, intrinsics_from_fov, look_at
from spatial.scenes import facade, make_scene
from spatial.scenes.config import SceneSize
from spatial.scenes.generate import render_view

SFM_SIZE = SceneSize(width=256, height=192, views=16, supersample=2, points=500)
VIDEO_W, VIDEO_H, VIDEO_FRAMES = 256, 192, 30
BLURRED = {5, 11, 17, 23}


def scene_photos(name: str, size: SceneSize, folder: Path):
    """The scene's images written to `folder` as PNGs; returns the scene with its true cameras."""
    scene = load_scene(make_scene(name, size))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(scene)):
        Image.fromarray((scene.load_image(i) * 255 + 0.5).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return scene


def write_video(path: Path, frames: list[np.ndarray], rotation: int = 0, fps: int = 10) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        if rotation:
            stream.set_display_rotation(rotation)
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def dolly_video(path: Path) -> tuple[Cameras, list[np.ndarray]]:
    """A smooth sideways dolly in front of the facade, every sixth frame blurred on purpose, written to `path`;
    returns the true cameras and the frames."""
    t = torch.linspace(0, 1, VIDEO_FRAMES, dtype=torch.float64)
    eye = torch.stack([-0.9 + 1.8 * t, torch.full_like(t, -2.2), 1.0 + 0.3 * torch.sin(3 * t)], -1)
    target = torch.stack([0.3 * eye[:, 0], torch.full_like(t, 2.5), torch.full_like(t, 1.0)], -1)
    c2w = look_at(eye, target, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    cams = Cameras(c2w.float(), intrinsics_from_fov(60, VIDEO_W, VIDEO_H).expand(VIDEO_FRAMES, 3, 3).clone(),
                   VIDEO_W, VIDEO_H)
    prims = facade.primitives()
    frames = []
    for i in range(VIDEO_FRAMES):
        rgb = (np.clip(render_view(prims, cams, i, 1)["rgb"], 0, 1) * 255 + 0.5).astype(np.uint8)
        if i in BLURRED:
            rgb = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(4)))
        frames.append(rgb)
    write_video(path, frames)
    return cams, frames
