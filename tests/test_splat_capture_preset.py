"""The capture preset: chosen by --preset auto for processed captures on a CPU; coarse-to-fine steps."""

import json
import shutil
from dataclasses import replace

import torch

from spatial import load_scene
from spatial.cli import main
from spatial.splats import trainer as trainer_module
from spatial.splats.trainer import SplatTrainer
from spatial.training.methods import capture_source, get_method
from tests.helpers import small_config


def test_the_first_steps_train_on_half_size_images_with_the_matching_camera(orbit_path, tmp_path, monkeypatch):
    trainer = SplatTrainer(load_scene(orbit_path), replace(small_config(6), coarse_until=3), tmp_path)
    seen = []
    real_step = trainer_module.train_step

    def spy(state, config, strategy, targets, world_to_cam, K, *rest):
        seen.append((targets[0].clone(), K[0].clone(), world_to_cam[0].clone()))
        return real_step(state, config, strategy, targets, world_to_cam, K, *rest)

    monkeypatch.setattr(trainer_module, "train_step", spy)
    for _ in range(6):
        trainer.step()
    H, W = trainer.images[trainer.scene.train_ids[0]].shape[:2]
    for step, (target, K, world_to_cam) in enumerate(seen):
        full = step >= 3
        assert target.shape[:2] == ((H, W) if full else (H // 2, W // 2))
        index = next(i for i in trainer.scene.train_ids if torch.equal(trainer.world_to_cam[i], world_to_cam))
        expected_K = trainer.K[index].clone()
        if not full:
            expected_K[:2] /= 2
            image = trainer.images[index]
            rgb = image[..., :3] * image[..., 3:] + trainer.background * (1 - image[..., 3:])
            box = rgb[: H // 2 * 2, : W // 2 * 2].reshape(H // 2, 2, W // 2, 2, 3).mean((1, 3))
            assert torch.allclose(target, box, atol=1e-5)  # the box-filtered photo
        assert torch.allclose(K, expected_K)


def test_auto_picks_the_capture_preset_for_a_processed_capture_on_a_cpu(orbit_path, tmp_path):
    scene = tmp_path / "capture"
    shutil.copytree(orbit_path, scene)
    assert capture_source(scene) is None
    assert get_method("splat").preset_name("auto", scene) == "cpu"
    (scene / "manifest.json").write_text(json.dumps({"source": {"video": "/somewhere/clip.mp4"}}))
    assert capture_source(scene) == "video"
    assert get_method("splat").preset_name("auto", scene) == "cpu"  # a video's frames record no exposure
    (scene / "manifest.json").write_text("[1, 2")  # a broken manifest is not a capture, and no crash
    assert capture_source(scene) is None and get_method("splat").preset_name("auto", scene) == "cpu"
    (scene / "manifest.json").write_text(json.dumps({"source": {"photos": "/somewhere/photos"}}))
    assert capture_source(scene) == "photos"
    assert get_method("splat").preset_name("auto", scene) == "capture"
    assert get_method("splat").preset_name("cpu", scene) == "cpu"
    main(["train", "splat", str(scene), "--out", str(tmp_path / "run"), "--step.steps", "2"])
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["preset"] == "capture"
    assert info["config"]["step"]["appearance"]["per_image"] is True
    assert info["config"]["coarse_until"] == 700


def test_auto_picks_the_gpu_capture_preset_for_a_processed_capture_with_cuda(orbit_path, tmp_path, monkeypatch):
    import torch

    scene = tmp_path / "capture"
    shutil.copytree(orbit_path, scene)
    method = get_method("splat")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert method.preset_name("auto", scene) == "default"
    assert method.preset_name("auto") == "default"
    (scene / "manifest.json").write_text(json.dumps({"source": {"video": "/somewhere/clip.mp4"}}))
    assert method.preset_name("auto", scene) == "default"
    (scene / "manifest.json").write_text(json.dumps({"source": {"photos": "/somewhere/photos"}}))
    assert method.preset_name("auto", scene) == "capture-gpu"
    config = method.preset_config("auto", scene)
    assert config.step.appearance.per_image and config.step.appearance.exposure and config.step.steps == 7000
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert method.preset_name("auto", scene) == "capture"


def test_auto_judges_the_scene_wherever_it_stands_among_the_options(tmp_path):
    """The scene is the positional argument as the command's parser reads it: an existing run folder given to
    --out before it is not taken for the scene."""
    import tyro

    from spatial.cli import resolve

    scene, run = tmp_path / "capture", tmp_path / "run"
    scene.mkdir()
    (scene / "manifest.json").write_text(json.dumps({"source": {"photos": "/somewhere/photos"}}))
    run.mkdir()
    capture_steps = get_method("splat").preset_config("capture").step.steps
    for args in ([str(scene), "--out", str(run)], ["--out", str(run), str(scene)],
                 ["--out", str(run), "--step.ssim-lambda", "0.3", str(scene)]):
        leaf, _, rest = resolve(["train", "splat", *args])
        command = tyro.cli(leaf, args=rest)
        assert command.scene == scene and command.out == run, args
        assert command.config.coarse_until == 700 and command.config.step.steps == capture_steps, args
