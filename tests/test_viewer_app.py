"""The viewer without a browser: camera paths to video, `spatial view` input and port errors."""

import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import torch

from spatial import SpatialError, load_camera_path, load_model
from spatial.transforms import rotmat_to_quat
from spatial.video_out import read_video
from tests.helpers import free_port


class FakeCamera:  # what viser reports for a browser's camera
    def __init__(self, c2w, fov_radians):
        self.wxyz, self.position, self.fov = rotmat_to_quat(c2w[:3, :3]).numpy(), c2w[:3, 3].numpy(), fov_radians


def test_a_path_made_in_the_viewer_saves_and_renders_to_matching_video(trained_run, tmp_path):
    from spatial_viewer.cli import build_app

    app = build_app([trained_run], tmp_path / "edited.ply", thumbnails=False)
    app.start("127.0.0.1", free_port())
    try:
        with pytest.raises(SpatialError, match="at least two keyframes"):
            app.paths.camera_path()
        cams = app.cameras
        for i in (0, 3, 6):
            app.paths.add_keyframe(FakeCamera(cams.cam_to_world[i], 0.8))
        app.paths.seconds.value, app.paths.fps.value = 1.0, 6
        saved = load_camera_path(app.paths.save_path())
        assert len(saved) == 6 and len(saved.keyframes) == 3
        torch.testing.assert_close(saved.cam_to_world[0].float(), cams.cam_to_world[0], atol=1e-5, rtol=0)
        video = read_video(app.paths.render_video())
        direct = load_model(trained_run).render(app.paths.camera_path().cameras()).rgb.clamp(0, 1).numpy() * 255
        assert video.shape == direct.shape == (6, 480, 640, 3)
        assert np.abs(video.astype(np.float32) - direct).mean() < 4.0
        app.layers.save()  # the Layers panel's "Save splats": every visible layer, to --out
        saved_splats = load_model(tmp_path / "edited.ply").params
        torch.testing.assert_close(saved_splats["means"], load_model(trained_run).params["means"], rtol=0, atol=0)
        # the server hands out its web client and nothing else: no files from the disk
        for probe in ("/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", f"/{trained_run}/config.json"):
            try:
                body = urllib.request.urlopen(app.url + probe, timeout=5).read()
            except Exception:  # noqa: BLE001 - a refusal is what we want
                continue
            assert b"root:" not in body and b'"scene"' not in body
    finally:
        app.stop()


def run_view(*args):
    result = subprocess.run([sys.executable, "-m", "spatial", "view", *map(str, args)], capture_output=True,
                            text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def test_view_errors_are_clear(tmp_path):
    code, out = run_view(tmp_path / "missing.ply")
    assert code == 2 and "missing.ply: not found" in out and "Traceback" not in out
    bad = tmp_path / "bad.ply"
    bad.write_text("not a ply")
    code, out = run_view(bad)
    assert code == 2 and "bad.ply: not a PLY file" in out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        code, out = run_view(bad, "--port", s.getsockname()[1])
        assert code == 2 and "is in use" in out and "--port" in out


def test_server_renders_are_small_while_the_camera_moves_and_full_size_once_it_rests(monkeypatch):
    """The viewer's render loop, driven tick by tick without a server: a moved camera gets a small render at
    once, then one full-size render after it rests, then none until something changes (its pose, the mode, the
    world); a slow model (a NeRF) renders smaller still, and is capped at rest."""
    from spatial.trained import SplatModel
    from spatial_viewer import server_renders
    from spatial_viewer.server_renders import ServerRenders
    from tests.helpers import random_splat_params

    c2w = torch.eye(4)
    c2w[2, 3] = -3.0

    class Client:
        client_id = 1

        def __init__(self):
            self.camera = FakeCamera(c2w, 0.8)
            self.camera.image_width, self.camera.image_height = 1024, 768
            self.sizes = []
            self.scene = self

        def set_background_image(self, image, format=None):
            self.sizes.append(None if image is None else image.shape[:2])

    model = SplatModel(random_splat_params(200, seed=1), "test")
    world_version, slow = [0], [False]
    renders = ServerRenders(lambda: model, (0.0, 0.0, 0.0), state=lambda: world_version[0],
                            slow_model=lambda: slow[0])
    renders.mode = "colour"
    client = Client()
    clock = [100.0]
    monkeypatch.setattr(server_renders.time, "time", lambda: clock[0])
    renders.tick([client])
    renders.tick([client])  # nothing moved, not yet at rest
    clock[0] += server_renders.REST_SECONDS + 0.01
    renders.tick([client])
    renders.tick([client])  # at rest, full size already sent
    assert client.sizes == [(192, 256), (768, 1024)]
    world_version[0] += 1  # an edit: the view is rendered again, small first
    renders.tick([client])
    renders.mode = "depth"
    renders.tick([client])
    assert client.sizes[2:] == [(192, 256), (192, 256)]
    slow[0] = True
    client.camera.position = client.camera.position + 0.1
    renders.tick([client])
    clock[0] += 1.0
    renders.tick([client])
    assert client.sizes[4:] == [(72, 96), (384, 512)]
