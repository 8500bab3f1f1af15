"""Recorded exposure: read from each photo's EXIF on import, kept in the scene's exposures.json, and used as a known
gain on each photo's render when training splats or a NeRF (held-out photos too)."""

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from spatial import SpatialError, load_scene
from spatial.io.exposures import GAMMA, exposure_gains, read_exposures, write_exposures
from spatial.process.photos import exposure_settings, import_photos
from spatial.splats.appearance import AppearanceConfig
from spatial.splats.trainer import SplatTrainer
from tests.helpers import small_config

EXIF_IFD, EXPOSURE_TIME, F_NUMBER, ISO = 0x8769, 0x829A, 0x829D, 0x8827


def photo(path, exposure_time=None, iso=None, f_number=None, value=128):
    exif = Image.Exif()
    tags = exif.get_ifd(EXIF_IFD)
    for tag, v in ((EXPOSURE_TIME, exposure_time), (ISO, iso), (F_NUMBER, f_number)):
        if v is not None:
            tags[tag] = v
    Image.new("RGB", (32, 24), (value, 90, 40)).save(path, exif=exif)
    return path


def test_the_exposure_settings_come_from_exif(tmp_path):
    assert exposure_settings(photo(tmp_path / "a.jpg", 1 / 60, 25, 1.8)) == pytest.approx(
        {"exposure_time": 1 / 60, "iso": 25.0, "f_number": 1.8})
    assert exposure_settings(photo(tmp_path / "b.jpg", 1 / 60, 25)) == pytest.approx(
        {"exposure_time": 1 / 60, "iso": 25.0, "f_number": None})
    assert exposure_settings(photo(tmp_path / "c.jpg", 1 / 60)) is None  # no ISO: the exposure is unknown
    assert exposure_settings(photo(tmp_path / "d.jpg", 0.0, 25)) is None  # not a positive number
    assert exposure_settings(photo(tmp_path / "e.jpg")) is None


def test_import_keeps_each_photos_settings_by_its_imported_name(tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    photo(source / "one.JPG", 1 / 60, 25, 1.8)
    photo(source / "two.jpeg", 1 / 120, 50, 1.8)
    photo(source / "three.jpg")
    imported = import_photos(source, tmp_path / "input")
    assert sorted(imported.exposures) == ["one.jpg", "two.jpg"]  # three.jpg has no EXIF
    assert imported.exposures["one.jpg"] == pytest.approx({"exposure_time": 1 / 60, "iso": 25.0, "f_number": 1.8})
    assert imported.exposures["two.jpg"] == pytest.approx({"exposure_time": 1 / 120, "iso": 50.0, "f_number": 1.8})


def test_exposures_round_trip_as_relative_exposures(tmp_path):
    write_exposures(tmp_path, {"b.jpg": {"exposure_time": 0.02, "iso": 50, "f_number": 2.0},
                               "a.jpg": {"exposure_time": 0.01, "iso": 100, "f_number": 1.0}})
    values, why_not = read_exposures(tmp_path, ["a.jpg", "b.jpg"])
    assert why_not == "" and values.dtype == torch.float64
    assert values.tolist() == pytest.approx([1.0, 0.25])  # exposure time x ISO / f-number^2


def test_an_unrecorded_aperture_leaves_every_aperture_out(tmp_path):
    write_exposures(tmp_path, {"a.jpg": {"exposure_time": 0.01, "iso": 100, "f_number": 2.0},
                               "b.jpg": {"exposure_time": 0.01, "iso": 100, "f_number": None}})
    assert read_exposures(tmp_path, ["a.jpg", "b.jpg"])[0].tolist() == pytest.approx([1.0, 1.0])


def test_a_scene_without_the_file_or_with_a_photo_missing_has_no_exposures(tmp_path):
    assert read_exposures(tmp_path, ["a.jpg"]) == (None, "")
    write_exposures(tmp_path, {"a.jpg": {"exposure_time": 0.01, "iso": 100, "f_number": 2.0}})
    values, why_not = read_exposures(tmp_path, ["a.jpg", "b.jpg"])
    assert values is None
    assert why_not == f"{tmp_path / 'exposures.json'} has no exposure for b.jpg: photos are rendered at one exposure"


@pytest.mark.parametrize("entry, problem", [
    ({"exposure_time": "fast", "iso": 100, "f_number": 2.0}, "exposure_time is 'fast'; expected a number from 1e-06 "
                                                             "to 3600"),
    ({"exposure_time": -0.01, "iso": 100, "f_number": 2.0}, "exposure_time is -0.01; expected a number from 1e-06 to "
                                                            "3600"),
    ({"exposure_time": 0.01, "iso": True, "f_number": 2.0}, "iso is True; expected a number from 1 to 1e+07"),
    ({"exposure_time": 0.01, "f_number": 2.0}, "iso is None; expected a number from 1 to 1e+07"),
    ({"exposure_time": 0.01, "iso": 100, "f_number": 1e-200}, "f_number is 1e-200; expected a number from 0.5 to 256 "
                                                              "(or null)"),
    ({"exposure_time": 1e300, "iso": 100, "f_number": 2}, "exposure_time is 1e+300; expected a number from 1e-06 to "
                                                          "3600"),
    ([0.01, 100, 2.0], "not an object of exposure_time, iso and f_number"),
])
def test_a_malformed_exposure_is_an_error_naming_the_file_photo_and_field(tmp_path, entry, problem):
    (tmp_path / "exposures.json").write_text(json.dumps({"images": {"a.jpg": entry}}))
    with pytest.raises(SpatialError) as error:
        read_exposures(tmp_path, ["a.jpg"])
    assert str(error.value) == f"{tmp_path / 'exposures.json'}: the exposure of 'a.jpg': {problem}"


def test_a_file_of_another_shape_is_an_error_naming_it(tmp_path):
    (tmp_path / "exposures.json").write_text('{"a.jpg": 1}')
    with pytest.raises(SpatialError, match=f"^{tmp_path / 'exposures.json'}: expected " + r'\{"images"'):
        read_exposures(tmp_path, ["a.jpg"])


def test_gains_are_relative_to_the_training_photos_geometric_mean():
    gains = exposure_gains(torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64), train_ids=[0, 1, 2])
    assert gains.dtype == torch.float32
    assert gains.tolist() == pytest.approx([0.5 ** (1 / GAMMA), 1.0, 2 ** (1 / GAMMA), 4 ** (1 / GAMMA)])


@pytest.fixture
def exposed_orbit(orbit_path, tmp_path):
    """The orbit scene photographed at two exposures: every other photo, the first held-out one among them, taken
    at a quarter of the exposure (its pixels darker by 0.25^(1/2.2), as a gamma-encoded photo is), with
    exposures.json. Its background is black, which is black at any exposure (a gain scales the whole render,
    background too)."""
    root = tmp_path / "orbit"
    shutil.copytree(orbit_path, root)
    scene = load_scene(root)
    dark = set(scene.train_ids[::2]) | {scene.test_ids[0]}
    for i in dark:
        rgba = scene.load_rgba(i)  # [H, W, 4] in 0-1
        darker = np.concatenate([rgba[..., :3] * rgba[..., 3:] * 0.25 ** (1 / GAMMA), np.ones_like(rgba[..., 3:])], -1)
        Image.fromarray(np.round(darker * 255).astype(np.uint8)).save(scene.image_paths[i])
    write_exposures(root, {name: {"exposure_time": 1 / 240 if i in dark else 1 / 60, "iso": 100, "f_number": 2.0}
                           for i, name in enumerate(scene.image_names)})
    return root, sorted(dark)


def exposure_config(steps, exposure):
    config = small_config(steps)
    return replace(config, step=replace(config.step, appearance=AppearanceConfig(exposure=exposure)))


def test_load_scene_reads_the_exposures(exposed_orbit):
    root, dark = exposed_orbit
    scene = load_scene(root)
    expected = [100 / 240 / 4 if i in dark else 100 / 60 / 4 for i in range(len(scene.image_names))]
    assert scene.exposures.tolist() == pytest.approx(expected)
    assert scene.subset([1, 0]).exposures.tolist() == pytest.approx(expected[1::-1])


def test_a_held_out_photo_is_rendered_at_its_own_exposure(exposed_orbit, tmp_path):
    root, dark = exposed_orbit
    scene = load_scene(root)
    trainer = SplatTrainer(scene, exposure_config(1, True), tmp_path / "run")
    plain = SplatTrainer(scene, exposure_config(1, False), tmp_path / "plain")
    held_out = scene.test_ids[0]
    dark_share = len(scene.train_ids[::2]) / len(scene.train_ids)  # a quarter of the exposure, against the
    expected_gain = math.exp((1 - dark_share) * math.log(0.25) / GAMMA)  # training photos' geometric mean
    assert trainer.gains[held_out].item() == pytest.approx(expected_gain)
    assert torch.allclose(trainer.render_view(held_out), plain.render_view(held_out) * expected_gain)


def test_with_per_image_appearance_a_held_out_photo_takes_what_of_it_follows_exposure(exposed_orbit, tmp_path):
    root, dark = exposed_orbit
    scene = load_scene(root)
    config = exposure_config(1, True)
    config.step.appearance.per_image = True
    trainer = SplatTrainer(scene, config, tmp_path / "run")
    log_gains = torch.log(trainer.gains)  # [C]
    train = log_gains[scene.train_ids]  # two exposures among the training photos
    slope = torch.tensor([[-0.4, 0.0, 0.0, 0.05], [0.0, -0.3, 0.0, 0.05], [0.0, 0.0, -0.5, 0.05]])
    with torch.no_grad():  # transforms that darken as exposure rises, as a camera's tone curve does
        trainer.state.appearance.transforms.copy_(torch.eye(3, 4) + slope * (train - train.mean())[:, None, None])
    held_out = scene.test_ids[0]
    expected_transform = torch.eye(3, 4) + slope * (log_gains[held_out] - train.mean())
    assert not torch.allclose(expected_transform, torch.eye(3, 4), atol=1e-3)  # its exposure is off the mean
    bare = SplatTrainer(scene, exposure_config(1, True), tmp_path / "bare").render_view(held_out)  # its gain alone
    expected = bare @ expected_transform[:, :3].T + expected_transform[:, 3]
    assert torch.allclose(trainer.render_view(held_out), expected, atol=1e-5)
    assert "with the part of the learned appearance that follows exposure" in trainer.eval_extras()["held_out"]


def test_training_at_known_exposures_fits_photos_of_two_exposures(exposed_orbit, tmp_path):
    root, dark = exposed_orbit
    scene = replace(load_scene(root), background=(0.0, 0.0, 0.0))
    scores = {}
    for exposure in (True, False):
        trainer = SplatTrainer(scene, exposure_config(150, exposure), tmp_path / str(exposure))
        trainer.train(150)
        scores[exposure] = [trainer.evaluate([i])["psnr"] for i in scene.test_ids]  # held out: one dark, one bright
    assert scores[True][0] > scores[False][0] + 3  # the dark one, rendered at its own exposure (measured: +5 dB)
    assert scores[True][1] > scores[False][1] + 0.5  # the bright one (+1.3 dB)


@pytest.mark.parametrize("per_image", [False, True])
def test_a_scene_without_exposures_trains_at_one_exposure_and_says_so(orbit_path, tmp_path, per_image):
    config = exposure_config(1, True)
    config.step.appearance.per_image = per_image
    trainer = SplatTrainer(load_scene(orbit_path), config, tmp_path)
    assert trainer.gains is None
    learned = ("each image's exposure is learned with the rest of its appearance" if per_image
               else "every image is rendered at one exposure")
    assert (f"{orbit_path} records no exposure for its images (spatial process writes exposures.json from photos' "
            f"EXIF; a video's frames have none): {learned}") in trainer.notes


def test_converting_a_scene_keeps_its_exposures_and_info_shows_them(exposed_orbit, tmp_path, capsys):
    from spatial.cli import main

    root, _ = exposed_orbit
    main(["scene", "convert", str(root), str(tmp_path / "c"), "--to", "colmap"])
    main(["scene", "info", str(tmp_path / "c")])
    original, converted = load_scene(root), load_scene(tmp_path / "c")
    by_name = dict(zip(converted.image_names, converted.exposures.tolist()))
    assert [by_name[name] for name in original.image_names] == original.exposures.tolist()
    assert "recorded for every photo (exposures.json)" in capsys.readouterr().out


def nerf_config(exposure: bool):
    import copy

    from spatial.configs.nerf import PRESETS

    config = copy.deepcopy(PRESETS["tiny"][1])
    config.steps, config.checkpoint_every, config.exposure = 2, 0, exposure
    return config


def test_a_nerf_trains_and_renders_each_photo_at_its_recorded_exposure(exposed_orbit, tmp_path):
    from spatial.nerf.trainer import NerfTrainer

    root, dark = exposed_orbit
    scene = load_scene(root)
    trainer = NerfTrainer(scene, nerf_config(True), tmp_path / "run")
    plain = NerfTrainer(scene, nerf_config(False), tmp_path / "plain")
    dark_share = len(scene.train_ids[::2]) / len(scene.train_ids)
    expected_gain = math.exp((1 - dark_share) * math.log(0.25) / GAMMA)
    held_out = scene.test_ids[0]
    assert trainer.gains[held_out].item() == pytest.approx(expected_gain) and plain.gains is None
    assert torch.allclose(trainer.render_view(held_out), plain.render_view(held_out) * expected_gain, atol=1e-6)
    batch = trainer.sample_batch()  # each ray is compared at its own photo's exposure
    assert torch.equal(batch.gains, trainer.gains[batch.image_ids]) and plain.sample_batch().gains is None
    assert trainer.evaluate([held_out])["held_out"].startswith(
        "rendered with the training photos' mean appearance (the world's own colours), at its recorded exposure")
    trainer.step()


def test_a_nerf_on_a_scene_without_exposures_says_so(orbit_path, tmp_path):
    from spatial.nerf.trainer import NerfTrainer

    trainer = NerfTrainer(load_scene(orbit_path), nerf_config(True), tmp_path)
    assert trainer.gains is None and trainer.sample_batch().gains is None
    assert (f"{orbit_path} records no exposure for its images (spatial process writes exposures.json from photos' "
            "EXIF; a video's frames have none): every image is rendered at one exposure, and the appearance "
            "embedding learns what differs") in trainer.notes
