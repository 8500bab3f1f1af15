"""The live training view: refreshes from the training loop, pause/resume, the panel, and `--viewer`."""

import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from spatial import load_scene
from spatial.splats.step import StepConfig
from spatial.splats.strategies import DefaultStrategy
from spatial.splats.trainer import SplatTrainConfig, SplatTrainer
from spatial.training.loop import LiveViewerOptions
from tests.helpers import free_port


def wait_for(condition, seconds=20.0):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def shown_means(live):
    world = live.app.world
    return world.layer("training").params["means"] if world.layers else None


def test_live_view_follows_training_and_pauses_it(orbit_path, tmp_path):
    from spatial_viewer.live import LiveTraining

    config = SplatTrainConfig(step=StepConfig(steps=60, sh_degree=1),
                              strategy=DefaultStrategy(refine_start=10, refine_every=10, reset_every=0),
                              checkpoint_every=0)
    trainer = SplatTrainer(load_scene(orbit_path), config, tmp_path)
    live = LiveTraining(trainer, LiveViewerOptions(port=free_port(), refresh_seconds=0.0), thumbnails=False)
    try:
        wait_for(lambda: shown_means(live) is not None)
        torch.testing.assert_close(shown_means(live), trainer.state.params["means"].detach())
        thread = threading.Thread(target=trainer.train, args=(60, live.on_step))
        thread.start()
        wait_for(lambda: trainer.step_count >= 25)  # past two densifications: the count changed
        live.pause()
        wait_for(live.holding.is_set)  # the step in flight has finished ("pausing" until then)
        held = trainer.step_count
        assert "paused" in live._text.content
        time.sleep(1.0)
        assert trainer.step_count == held < 60, "training went on while paused"
        # what the viewer shows is the model as training stopped, densified Gaussians included
        wait_for(lambda: shown_means(live).shape == trainer.state.params["means"].shape)
        wait_for(lambda: torch.equal(shown_means(live), trainer.state.params["means"].detach()))
        assert f"step {held}" in live._text.content and "PSNR" in live._text.content
        assert live._resume.visible and not live._pause.visible
        live.resume()
        thread.join(timeout=60)
        assert trainer.step_count == 60
        live.finished(trainer.evaluate())
        wait_for(lambda: torch.equal(shown_means(live), trainer.state.params["means"].detach()))
        assert "test PSNR" in live._text.content
        assert live.pushed >= 3
    finally:
        live.stop()


def test_train_with_viewer_from_the_command_line(orbit_path, tmp_path):
    port = free_port()
    args = [sys.executable, "-m", "spatial", "train", "splat", str(orbit_path), "--out", str(tmp_path / "run"),
            "--preset", "cpu", "--step.steps", "20", "--viewer", "--viewer.port", str(port),
            "--viewer.no-keep-open"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"live viewer at http://127.0.0.1:{port}" in result.stdout
    assert (tmp_path / "run" / "splats.ply").is_file()
    with socket.socket() as s:  # a port in use is refused before anything is loaded
        s.bind(("127.0.0.1", 0))
        s.listen()
        args[args.index(str(port))] = str(s.getsockname()[1])
        args[args.index(str(tmp_path / "run"))] = str(tmp_path / "other")
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "is in use" in result.stderr and "--viewer.port" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("host,warns", [("0.0.0.0", True), ("127.0.0.1", False)])
def test_viewer_on_the_network_warns(host, warns, capsys):
    from spatial.cli.train import ViewerFlags

    assert ViewerFlags(host=host).options(False) is None
    options = ViewerFlags(host=host, port=1234).options(True)
    assert (options.host, options.port, options.keep_open) == (host, 1234, True)
    assert ("anyone who can reach this machine" in capsys.readouterr().out) == warns


def test_live_view_of_a_nerf_renders_on_the_server(orbit_path, tmp_path):
    import copy

    from spatial.cameras import Cameras
    from spatial.configs.nerf import PRESETS
    from spatial.nerf.trainer import NerfTrainer
    from spatial.transforms import rotmat_to_quat
    from spatial_viewer.live import LiveTraining
    from spatial_viewer.poses import client_camera

    config = copy.deepcopy(PRESETS["tiny"][1])
    config.checkpoint_every = 0
    trainer = NerfTrainer(load_scene(orbit_path), config, tmp_path)
    live = LiveTraining(trainer, LiveViewerOptions(port=free_port(), refresh_seconds=0.0), thumbnails=False)
    try:
        wait_for(lambda: live.app.model is not None)
        first = live.app.model
        trainer.train(10, live.on_step)
        wait_for(lambda: live.app.model is not first)  # refreshed with what training learned
        assert live.app.renders.mode == "colour" and not live.app.world.layers
        cams = trainer.scene.cameras

        class Camera:
            wxyz = rotmat_to_quat(cams.cam_to_world[0, :3, :3]).numpy()
            position = cams.cam_to_world[0, :3, 3].numpy()
            fov = 0.8

        wait_for(lambda: live._pending is None)
        image = live.app.renders.render_view(Camera, 32, 24, "colour")
        # the view is the model as training left it, rendered by the server
        c2w, K = client_camera(Camera, 32, 24)
        trainer.model.eval()
        direct = trainer.model.render_camera(Cameras(c2w[None], K[None], 32, 24), trainer.background)["rgb"]
        direct = (direct.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        assert image.shape == (24, 32, 3) and image.std() > 1
        assert np.abs(image.astype(int) - direct.astype(int)).max() <= 1
    finally:
        live.stop()
