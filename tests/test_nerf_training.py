"""NeRF training end to end: every preset runs, resume is exact, the learned geometry is right, and
the model renders, meshes and opens in the viewer like a splat model."""

import copy
import socket

import numpy as np
import pytest
import torch

from spatial import SpatialError, load_model, load_scene
from spatial.cli import main
from spatial.configs.nerf import PRESETS
from spatial.nerf.trainer import NerfTrainer
from spatial.training.loop import run_training


def preset(name, steps, **changes):
    config = copy.deepcopy(PRESETS[name][1])
    config.steps, config.checkpoint_every = steps, 0
    for key, value in changes.items():
        setattr(config, key, value)
    return config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_two_steps_on_cpu(name, orbit_path, tmp_path):
    result = run_training("nerf", orbit_path, tmp_path / name, preset(name, 2), resume=False, preset=name)
    assert result["step"] == 2 and np.isfinite(result["psnr"])
    assert (tmp_path / name / "checkpoints" / "step-000002.pt").is_file()
    assert (tmp_path / name / "eval.json").is_file()


def test_resume_continues_exactly(orbit_path, tmp_path):
    scene = load_scene(orbit_path)
    config = preset("tiny", 12)
    straight = NerfTrainer(scene, config, tmp_path / "a")
    straight.train(12)
    first = NerfTrainer(scene, preset("tiny", 12, checkpoint_every=5), tmp_path / "b")
    first.train(5)  # writes step-000005.pt; the second trainer starts from that file
    resumed = NerfTrainer(scene, config, tmp_path / "b")
    resumed.load_checkpoint(tmp_path / "b" / "checkpoints" / "step-000005.pt")
    resumed.train(12)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=f"{name} differs after resuming")


def test_cli_refuses_bad_runs(orbit_path, tmp_path, capsys):
    run_training("nerf", orbit_path, tmp_path / "run", preset("tiny", 2), resume=False)
    with pytest.raises(SpatialError, match="pass --resume"):
        run_training("nerf", orbit_path, tmp_path / "run", preset("tiny", 2), resume=False)
    capsys.readouterr()
    run_training("nerf", orbit_path, tmp_path / "run", preset("tiny", 3), resume=True)  # one more step, said aloud
    said = " ".join(capsys.readouterr().out.split())
    assert "resuming with settings that differ from the run's: steps 3 (the run had 2)" in said
    with pytest.raises(SpatialError, match="no checkpoint to resume"):
        run_training("nerf", orbit_path, tmp_path / "empty", preset("tiny", 2), resume=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "ply", str(tmp_path / "run")])
    assert exit_info.value.code == 2 and "is a NeRF run" in capsys.readouterr().err
    bad = preset("tiny", 2)
    bad.model.proposal_samples = (16,)
    with pytest.raises(SpatialError, match="one sample count per grid"):
        NerfTrainer(load_scene(orbit_path), bad, tmp_path / "y")
    with pytest.raises(SpatialError, match="--box-max .* must exceed"):
        NerfTrainer(load_scene(orbit_path), preset("tiny", 2, bounds="box", box_min=(0, 0, 0), box_max=(1, -1, 1)),
                    tmp_path / "x")


@pytest.fixture(scope="module")
def nerf_run(orbit_path, tmp_path_factory):
    """The cpu preset's model trained for 200 steps on the test-size orbit scene (~45 s)."""
    out = tmp_path_factory.mktemp("nerf") / "orbit"
    result = run_training("nerf", orbit_path, out, preset("cpu", 200), resume=False, preset="cpu")
    return out, result


@pytest.mark.slow
def test_a_trained_nerf_meshes_within_two_percent_of_the_true_surface(nerf_run, tmp_path):
    from spatial.mesh import FusionConfig, mesh_from_depth
    from spatial.nerf.mesh import DensityMeshConfig, density_mesh
    from spatial.scenes.geometry import mesh_error

    run, result = nerf_run
    assert result["psnr"] > 17.0, result  # 64x48 images: the splat run reaches about 20 dB here
    model = load_model(run)
    scene_path = model.scene_path
    marched = density_mesh(model.model, DensityMeshConfig(resolution=64))
    error = mesh_error(marched, scene_path)
    assert error["symmetric_fraction"] < 0.02, error
    assert marched.colors.std() > 0.04  # textured, not one flat colour
    cameras = model.training_cameras()
    fused = mesh_from_depth(model.render_frames(cameras), cameras, FusionConfig(resolution=96))
    error = mesh_error(fused, scene_path)
    assert error["symmetric_fraction"] < 0.02, error
    main(["export", "density-mesh", str(run), "--out", str(tmp_path / "m.glb"), "--mesh.resolution", "48"])
    assert (tmp_path / "m.glb").stat().st_size > 10_000


@pytest.mark.slow
def test_a_trained_nerf_renders_paths_and_shows_in_the_viewer(nerf_run, tmp_path):
    from spatial.video_out import read_video
    from spatial_viewer.cli import build_app

    run, _ = nerf_run
    model = load_model(run)
    scene = model.scene()
    test = scene.test_ids[0]
    out = next(model.render_frames(scene.cameras[test]))
    target = torch.from_numpy(scene.load_image(test))
    mse = float(((out.rgb[0].clamp(0, 1) - target) ** 2).mean())
    assert -10 * np.log10(mse) > 17.0
    assert float(out.alpha.mean()) > 0.3 and float(out.depth[out.alpha > 0.5].min()) > 0
    main(["render", str(run), "--out", str(tmp_path / "v.mp4"), "--frames", "4", "--width", "64", "--height", "48"])
    assert read_video(tmp_path / "v.mp4").shape == (4, 48, 64, 3)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app([run], tmp_path / "edited.ply", thumbnails=False)
    app.start("127.0.0.1", port)
    try:
        assert app.model is not None and app.renders.mode == "colour" and not app.world.layers
        assert "a NeRF" in app._status_text.content  # the panel says what is shown, not "0 Gaussians"
        cams = scene.cameras

        class Camera:  # what viser reports for a browser's camera
            from spatial.transforms import rotmat_to_quat
            wxyz = rotmat_to_quat(cams.cam_to_world[test, :3, :3]).numpy()
            position = cams.cam_to_world[test, :3, 3].numpy()
            fov = float(2 * np.arctan(0.5 * int(cams.height[test]) / float(cams.K[test, 1, 1])))

        image = app.renders.render_view(Camera, int(cams.width[test]), int(cams.height[test]), "colour")
        direct = (out.rgb[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        assert np.abs(image.astype(int) - direct.astype(int)).mean() < 1.0
        assert app.renders.render_view(Camera, 32, 24, "depth").std() > 5  # a depth map, not a flat image
    finally:
        app.stop()


def test_the_contraction_leaves_the_world_a_forward_facing_capture_sees_undistorted(facade_path, orbit_path):
    """The facade's cameras move within 0.8 units of their centre and look at a wall 3-6 units away: the undistorted
    radius grows to hold 90% of the sparse points. Around an object (the orbit) the cameras' extent already does."""
    facade, orbit = load_scene(facade_path), load_scene(orbit_path)
    radius = facade.world_radius()
    inside = torch.linalg.norm(facade.points - facade.center, dim=-1) <= radius
    assert radius > 3 * facade.extent and abs(float(inside.float().mean()) - 0.9) < 0.01
    assert orbit.world_radius() == orbit.extent


@pytest.mark.slow
def test_an_unbounded_capture_trains_with_scene_contraction(facade_path, tmp_path):
    """The forward-facing facade has opaque images, so `auto` contracts space instead of using a box."""
    config = preset("cpu", 150)
    trainer = NerfTrainer(load_scene(facade_path), config, tmp_path)
    assert not trainer.space.bounded and "unbounded" in trainer.describe()
    trainer.train(150)
    result = trainer.evaluate()
    assert result["psnr"] > 22.0, result  # 24.4 dB measured; splats reach 26.4 dB in 300 steps here
    out = trainer.render(trainer.scene.test_ids[0])
    assert float(out["alpha"].min()) > 0.9  # every ray ends on the wall or the ground: nothing see-through


def test_training_rays_match_their_pixels_when_images_differ_in_size(orbit_path, tmp_path):
    """Undistorted captures have images of slightly different sizes: every ray must carry its own pixel."""
    import shutil

    from PIL import Image

    scene_dir = tmp_path / "scene"
    shutil.copytree(orbit_path, scene_dir)
    small = scene_dir / "train" / "r_001.png"
    Image.open(small).resize((48, 36)).save(small)  # Blender layout: intrinsics follow each image's size
    scene = load_scene(scene_dir)
    assert len({int(w) for w in scene.cameras.width[scene.train_ids]}) == 2
    trainer = NerfTrainer(scene, preset("tiny", 2, random_background=False), tmp_path / "run")
    batch = trainer.sample_batch()
    for r in range(0, 256, 7):
        i = int(batch.image_ids[r])
        uv, _ = scene.cameras[i].project((batch.origins[r] + 2.0 * batch.dirs[r])[None, None])
        u, v = (int(c) for c in uv[0, 0].floor())
        rgba = torch.from_numpy(scene.load_rgba(i))[v, u]
        expected = rgba[:3] * rgba[3] + trainer.background * (1 - rgba[3])
        torch.testing.assert_close(batch.target[r], expected, atol=1e-5, rtol=0)
    resized = next(i for i in scene.train_ids if int(scene.cameras.width[i]) == 48)
    assert (batch.image_ids == resized).any()  # the resized image is drawn from too
    trainer.train(2)


def test_auto_picks_a_nerf_capture_preset_for_a_processed_capture(orbit_path, tmp_path, monkeypatch):
    import json
    import shutil

    from spatial.training.methods import get_method

    scene = tmp_path / "capture"
    shutil.copytree(orbit_path, scene)
    method = get_method("nerf")
    assert method.preset_name("auto", scene) == "cpu"
    (scene / "manifest.json").write_text(json.dumps({"source": {"photos": "/somewhere/photos"}}))
    assert method.preset_name("auto", scene) == "capture"
    capture, video = method.preset_config("auto", scene), method.preset_config("video")
    assert capture.exposure and not video.exposure
    assert capture.model.field.appearance_dim > 0 == video.model.field.appearance_dim
    assert capture.losses.free > 0 == video.losses.free and capture.losses.unseen > 0 == video.losses.unseen
    assert capture.losses.lone > 0 == video.losses.lone
    capture.exposure, capture.model.field.appearance_dim, capture.losses.free, capture.losses.unseen = False, 0, 0, 0
    capture.losses.lone = 0
    assert capture.steps < video.steps  # its steps are slower: fewer of them fill the same time
    capture.steps = video.steps
    assert capture == video  # the video preset, with a per-image appearance at recorded exposures, free, unseen space
    (scene / "manifest.json").write_text(json.dumps({"source": {"video": "/somewhere/walk.mp4"}}))
    assert method.preset_name("auto", scene) == "video"
    assert get_method("splat").preset_name("auto", scene) == "cpu"  # the splats have no video preset
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert method.preset_name("auto", scene) == "default"  # with CUDA a video's frames get the device's preset
    (scene / "manifest.json").write_text(json.dumps({"source": {"photos": "/somewhere/photos"}}))
    assert method.preset_name("auto", scene) == "capture-gpu"
    assert method.preset_config("auto", scene).exposure and method.preset_name("auto") == "default"
