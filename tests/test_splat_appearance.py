"""Per-image appearance: learned exposure per photo, centred on the identity, never exported (its exact resume is
in test_splat_training's resume test)."""

from dataclasses import replace

import pytest
import torch

from spatial import load_scene
from spatial.formats.ply import load_ply
from spatial.splats.appearance import ImageAppearance
from spatial.splats.trainer import SplatTrainer
from spatial.training.loop import export_run
from spatial.training.run_folder import latest_checkpoint
from tests.helpers import appearance_config


def test_the_transforms_are_centred_on_the_identity_and_applied_per_image():
    appearance = ImageAppearance(3, "cpu")
    with torch.no_grad():
        appearance.transforms[0, :, :3] *= 0.5
        appearance.transforms[1, :, 3] += 0.3
    centred = appearance.centred()  # [3, 3, 4]
    assert torch.allclose(centred.mean(0), torch.eye(3, 4), atol=1e-6)
    image = torch.rand(4, 5, 3)
    t = centred[1]
    assert torch.allclose(appearance(image, 1), image @ t[:, :3].T + t[:, 3], atol=1e-6)
    assert torch.allclose(centred[0, :, :3], centred[2, :, :3] - 0.5 * torch.eye(3), atol=1e-6)


def test_the_transforms_line_over_a_recorded_value_is_their_least_squares_fit():
    x = torch.tensor([0.0, 1.0, 2.0, 5.0])  # each image's log exposure, say
    slope = torch.tensor([[-0.5, 0.1, 0.0, 0.2], [0.0, -0.3, 0.0, 0.1], [0.05, 0.0, -0.6, 0.3]])  # [3, 4]
    appearance = ImageAppearance(4, "cpu")
    wobble = torch.tensor([1.0, -2.0, 1.0, 0.0])  # off the line, uncorrelated with x and summing to 0
    with torch.no_grad():
        appearance.transforms.copy_(torch.eye(3, 4) + slope * (x - x.mean())[:, None, None]
                                    + 0.01 * wobble[:, None, None] * torch.ones(3, 4)
                                    + 0.2 * torch.eye(3, 4))  # a shift shared by all, which centring removes
    assert (wobble * (x - x.mean())).sum() == 0
    assert torch.allclose(appearance.following(x, x.mean()), torch.eye(3, 4), atol=1e-6)  # the mean at the mean
    assert torch.allclose(appearance.following(x, torch.tensor(3.5)), torch.eye(3, 4) + slope * (3.5 - 2.0),
                          atol=1e-5)
    same = torch.full((4,), 0.7)  # every photo at one exposure: nothing follows it
    assert torch.equal(appearance.following(same, torch.tensor(0.9)), torch.eye(3, 4))


def test_a_darker_photo_gets_a_darker_transform_and_the_splats_keep_the_average(orbit_path, tmp_path):
    scene = load_scene(orbit_path)
    trainer = SplatTrainer(scene, appearance_config(150), tmp_path)
    dark = scene.train_ids[::2]
    background = trainer.background.to(trainer.device)
    for i in dark:  # half the photos taken at 0.6x the exposure (the whole photo: composited, then darkened)
        image = trainer.images[i]
        image[..., :3] = 0.6 * (image[..., :3] * image[..., 3:] + background * (1 - image[..., 3:]))
        image[..., 3] = 1
    trainer.train(150)
    gains = trainer.state.appearance.centred()[:, :, :3].diagonal(dim1=1, dim2=2).mean(-1)  # [views]
    rows = {index: row for row, index in enumerate(scene.train_ids)}
    dark_gain = gains[[rows[i] for i in dark]].mean()
    bright_gain = gains[[rows[i] for i in scene.train_ids if i not in dark]].mean()
    assert 0.6 < dark_gain / bright_gain < 0.9  # 1 without per-image appearance
    assert abs(gains.mean().item() - 1) < 1e-5  # the splats hold the average exposure


def test_the_exported_splats_leave_the_transforms_out(orbit_path, tmp_path):
    trainer = SplatTrainer(load_scene(orbit_path), appearance_config(5), tmp_path)
    trainer.train(5)
    [(_, path)] = export_run(trainer, tmp_path)
    assert set(load_ply(path)) == set(trainer.state.params)


def test_a_checkpoint_with_appearance_for_other_photos_is_refused_by_name(orbit_path, tmp_path):
    from spatial import SpatialError
    from spatial.training.checkpoint import read_checkpoint, write_checkpoint

    scene = load_scene(orbit_path)
    config = replace(appearance_config(2), checkpoint_every=1)
    SplatTrainer(scene, config, tmp_path).train(1)
    path = latest_checkpoint(tmp_path)
    payload = read_checkpoint(path)
    payload["appearance"] = payload["appearance"][:-1]  # one photo fewer than the scene trains on
    write_checkpoint(payload, path)
    with pytest.raises(SpatialError, match=f"{path}: its per-image appearance is not one colour transform"):
        SplatTrainer(scene, config, tmp_path).load_checkpoint(path)


def test_a_held_out_photo_is_rendered_with_the_appearance_of_the_training_photo_nearest_it(orbit_path, tmp_path):
    scene = load_scene(orbit_path)
    trainer = SplatTrainer(scene, appearance_config(2), tmp_path)
    centers = scene.cameras.centers.double()
    for i in range(len(scene.image_names)):  # by camera position; a training photo is its own nearest
        expected = i if i in scene.train_ids else min(scene.train_ids, key=lambda j: float((centers[j] -
                                                                                             centers[i]).norm()))
        assert trainer.nearest_training_view[i] == expected
    held_out = scene.test_ids[0]
    nearest = trainer.nearest_training_view[held_out]
    rows = {index: row for row, index in enumerate(scene.train_ids)}
    with torch.no_grad():
        trainer.state.appearance.transforms[rows[nearest], :, :3] *= 0.5  # that photo was taken darker
    mean = trainer.render_view(held_out)  # by default: the world's own colours
    trainer.config.step.appearance.held_out = "nearest"
    darker = trainer.render_view(held_out)
    t = trainer.state.appearance.centred()[rows[nearest]]
    assert torch.allclose(darker, mean @ t[:, :3].T + t[:, 3], atol=1e-5)
    assert darker.mean() < 0.75 * mean.mean()
    assert trainer.evaluate([held_out])["held_out"].startswith(
        "rendered with the appearance learned for the training photo taken nearest it (by camera position); ")
    trainer.config.step.appearance.held_out = "mean"
    assert trainer.evaluate([held_out])["held_out"].startswith("rendered with the training photos' mean appearance")


def test_a_nerf_renders_a_held_out_photo_with_the_embedding_of_the_training_photo_nearest_it(orbit_path, tmp_path):
    import copy

    from spatial.configs.nerf import PRESETS
    from spatial.nerf.trainer import NerfTrainer

    config = copy.deepcopy(PRESETS["tiny"][1])
    config.steps, config.checkpoint_every = 2, 0
    scene = load_scene(orbit_path)
    trainer = NerfTrainer(scene, config, tmp_path)
    held_out = scene.test_ids[0]
    nearest = trainer.nearest_training_view[held_out]
    field = trainer.model.field
    with torch.no_grad():
        field.appearance.weight[scene.train_ids] = torch.randn(len(scene.train_ids), field.appearance.weight.shape[1])
    camera, background = trainer.cameras[held_out], trainer.background
    as_nearest = trainer.model.eval().render_camera(camera, background, 4096, nearest)["rgb"]
    as_mean = trainer.model.render_camera(camera, background, 4096, None)["rgb"]
    assert torch.equal(trainer.render_view(held_out), as_mean)  # by default: the world's own colours
    assert (as_nearest - as_mean).abs().mean() > 1e-3  # the embedding shows
    trainer.config.held_out_appearance = "nearest"
    assert torch.equal(trainer.render_view(held_out), as_nearest)
