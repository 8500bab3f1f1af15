"""`spatial process images`: synthetic scenes with known cameras, real captures, and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatial import SpatialError, load_scene
from spatial.cli import main
from spatial.process.alignment import pose_errors
from spatial.process.pipeline import process_images
from spatial.scenes.config import SceneSize
from tests.captures import SFM_SIZE, scene_photos


@pytest.fixture(scope="module")
def facade_photos(tmp_path_factory):
    """The facade scene's images alone (cameras held back), and the scene with its true cameras."""
    folder = tmp_path_factory.mktemp("photos")
    return folder, scene_photos("facade", SFM_SIZE, folder)


@pytest.fixture(scope="module")
def facade_processed(facade_photos, tmp_path_factory):
    folder, truth = facade_photos
    out = tmp_path_factory.mktemp("facade_scene")
    manifest = process_images(folder, out)
    return out, manifest, truth


def test_orbit_scene_registers_with_accurate_cameras(tmp_path):
    """The object-centric scene: 32 views around the objects (11 degrees apart), rendered at 384x288.

    Smaller renders calibrate the focal length less precisely from SIFT's sub-pixel positions, and the
    rotations absorb the error (about 1 degree at 256x192)."""
    truth = scene_photos("orbit", SceneSize(width=384, height=288, views=32, supersample=2, points=500),
                         tmp_path / "photos")
    manifest = process_images(tmp_path / "photos", tmp_path / "scene")
    assert manifest["images"]["registered"] == 32 and manifest["unregistered"] == {}
    scene = load_scene(tmp_path / "scene")
    ids = [int(Path(name).stem) for name in scene.image_names]
    errors = pose_errors(scene.cameras.cam_to_world, truth.cameras.cam_to_world[ids])
    assert errors["center_error_max"] < 0.01 and errors["rotation_error_max_deg"] < 1.0


def test_synthetic_scene_registers_with_accurate_cameras(facade_processed):
    out, manifest, truth = facade_processed
    assert manifest["images"]["registered"] == len(truth) and manifest["unregistered"] == {}
    assert manifest["mean_reprojection_error_px"] < 1.0
    scene = load_scene(out)
    ids = [int(Path(name).stem) for name in scene.image_names]
    errors = pose_errors(scene.cameras.cam_to_world, truth.cameras.cam_to_world[ids])
    assert errors["center_error_max"] < 0.01  # of the cameras' extent
    assert errors["rotation_error_max_deg"] < 1.0


def test_output_is_a_complete_scene_folder(facade_processed):
    out, manifest, _ = facade_processed
    for path in ("images", "images_2", "images_4", "images_8", "sparse/0/cameras.bin", "transforms.json",
                 "manifest.json", "colmap.log"):
        assert (out / path).exists(), path
    assert load_scene(out / "transforms.json").image_names == load_scene(out).image_names
    assert json.loads((out / "manifest.json").read_text())["images"]["registered"] == 16
    assert "Elapsed time" in (out / "colmap.log").read_text()  # COLMAP's own messages are kept


def test_output_trains_without_manual_steps(facade_processed, tmp_path):
    out, _, _ = facade_processed
    main(["train", "splat", str(out), "--preset", "cpu", "--step.steps", "3", "--out", str(tmp_path / "run")])
    assert (tmp_path / "run" / "splats.ply").is_file()


def test_bad_files_among_photos_are_skipped_and_reported(facade_photos, tmp_path):
    folder, truth = facade_photos
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    (mixed / "notes.txt").write_text("not a photo")
    (mixed / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    manifest = process_images(mixed, tmp_path / "out")
    assert set(manifest["skipped"]) == {"notes.txt", "broken.jpg"}
    assert "not an image file" in manifest["skipped"]["notes.txt"]
    assert manifest["images"]["registered"] == len(truth)


def test_empty_folder_and_too_few_photos(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpatialError, match="empty: the folder is empty"):
        process_images(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(SpatialError, match="not a folder of photos"):
        process_images(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "two").mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "two" / f"{i}.png")
    with pytest.raises(SpatialError, match="only 2 usable photos"):
        process_images(tmp_path / "two", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-imported is left behind
    (tmp_path / "mine").mkdir()
    with pytest.raises(SpatialError, match="only 2 usable photos"):
        process_images(tmp_path / "two", tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()  # a folder the user made is never removed


def test_a_folder_of_photos_is_not_a_scene_yet(tmp_path):
    from spatial import load_scene

    (tmp_path / "photos").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "photos" / "a.jpg")
    with pytest.raises(SpatialError) as error:
        load_scene(tmp_path / "photos")
    assert str(error.value) == (f"{tmp_path / 'photos'}: holds images but no camera poses; make a scene from them "
                                f"first: spatial process images {tmp_path / 'photos'} OUT/")


def test_photos_without_overlap_are_refused_clearly(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "noise").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(tmp_path / "noise" / f"{i}.png")
    with pytest.raises(SpatialError, match="overlap"):
        process_images(tmp_path / "noise", tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("capture, count", [("sceaux_castle", 11), ("monstree", 23)])
def test_real_captures_register_every_photo(shared_data, tmp_path, capture, count):
    manifest = process_images(shared_data / capture / "images", tmp_path / capture)
    assert manifest["images"]["registered"] == count, manifest["unregistered"]
    assert manifest["mean_reprojection_error_px"] < 1.5
    assert load_scene(tmp_path / capture).exposures.shape == (count,)  # every photo's exposure, from its EXIF


def test_import_an_existing_reconstruction(facade_path, tmp_path):
    main(["process", "import", str(facade_path / "transforms.json"), str(tmp_path / "scene")])
    original, imported = load_scene(facade_path), load_scene(tmp_path / "scene")
    assert imported.image_names == original.image_names
    assert (imported.cameras.cam_to_world - original.cameras.cam_to_world).abs().max() < 1e-5
    for path in ("images_2", "images_4", "images_8", "sparse/0/images.bin", "transforms.json", "manifest.json"):
        assert (tmp_path / "scene" / path).exists(), path


def test_global_mapper(facade_photos, tmp_path):
    folder, truth = facade_photos
    from spatial.process.sfm import SfMConfig

    manifest = process_images(folder, tmp_path / "scene", SfMConfig(mapper="global"))
    assert manifest["images"]["registered"] == len(truth) and manifest["mapper"] == "global"
    scene = load_scene(tmp_path / "scene")
    ids = [int(Path(name).stem) for name in scene.image_names]
    assert pose_errors(scene.cameras.cam_to_world, truth.cameras.cam_to_world[ids])["center_error_max"] < 0.01


def test_a_toy_matcher_is_one_file_and_one_registry_line(facade_photos, tmp_path, monkeypatch):
    """A matcher module written from scratch (each photo with the next three, as a pair list) and one `MATCHERS`
    entry: `spatial process` runs it by name between extraction and mapping, and the scene registers."""
    from spatial.process.matchers import MATCHERS
    from spatial.process.sfm import SfMConfig

    (tmp_path / "toy_matcher.py").write_text(
        "import pycolmap\n"
        "calls = []\n"
        "def next_three(job):\n"
        "    names = sorted(job.capture.names)\n"
        "    pairs = job.work / 'toy_pairs.txt'\n"
        "    pairs.write_text(''.join(f'{a} {b}\\n' for i, a in enumerate(names) for b in names[i + 1:i + 4]))\n"
        "    calls.append((job.matcher, len(pairs.read_text().splitlines())))\n"
        "    pycolmap.match_image_pairs(job.database, pairing_options=pycolmap.ImportedPairingOptions(\n"
        "        match_list_path=str(pairs)), device=pycolmap.Device.cpu)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import toy_matcher

    monkeypatch.setitem(MATCHERS, "toy", toy_matcher.next_three)
    folder, truth = facade_photos
    manifest = process_images(folder, tmp_path / "scene", SfMConfig(matcher="toy"))
    n = len(truth)
    assert toy_matcher.calls == [("toy", 3 * n - 6)]  # each photo with the next three, once
    assert manifest["images"]["registered"] == len(truth)


def test_photos_of_mixed_sizes_get_their_own_cameras(facade_photos, tmp_path):
    folder, truth = facade_photos
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    for name in ("003.png", "007.png", "011.png"):
        Image.open(mixed / name).resize((320, 240)).save(mixed / name)
    manifest = process_images(mixed, tmp_path / "scene")
    assert manifest["images"]["registered"] == len(truth)
    scene = load_scene(tmp_path / "scene")  # checks every image's size against its own camera
    widths = {int(w) for w in scene.cameras.width}
    # Without EXIF, COLMAP calibrates each photo as its own camera, and undistortion gives each its own size.
    assert min(widths) < 300 < max(widths)


def test_the_mapper_follows_the_capture_size(facade_processed):
    from spatial.process.mappers import LARGE_CAPTURE, mapper_for

    assert mapper_for("auto", LARGE_CAPTURE) == "incremental"
    assert mapper_for("auto", LARGE_CAPTURE + 1) == "global"
    assert mapper_for("incremental", 10 * LARGE_CAPTURE) == "incremental"
    _, manifest, _ = facade_processed
    assert manifest["mapper"] == "incremental" and manifest["notes"] == []
    assert manifest["config"]["fast_mapping"] is False  # a photo set keeps COLMAP's bundle adjustment schedule
    assert manifest["config"]["max_image_size"] == 1600  # and finds features at 1600 px


def test_a_missing_vocabulary_tree_is_one_line_before_anything_runs(facade_photos, tmp_path):
    """pycolmap's vocabulary-tree matcher aborts the whole process (SIGABRT) when its file is missing: the
    option is checked first, and nothing is written."""
    from spatial.process.sfm import SfMConfig

    folder, _ = facade_photos
    with pytest.raises(SpatialError, match=r"vocab_tree_flickr100K_words32K\.bin: vocabulary tree not found \(spatial "
                                           r"never downloads one\): pass a local COLMAP vocab_tree_\*\.bin to "
                                           r"--vocab-tree, or leave the option out") as error:
        process_images(folder, tmp_path / "out", SfMConfig(vocab_tree=tmp_path / "vocab_tree_flickr100K_words32K.bin"))
    assert "\n" not in str(error.value) and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_large_capture_maps_globally_and_registers_every_view(tmp_path):
    """200 views of the facade, above the large-capture threshold: the global mapper runs, every view registers,
    and the cameras keep the 1% / 1 degree bounds of the smaller captures."""
    from spatial.process.sfm import LARGE_CAPTURE

    size = SceneSize(width=208, height=156, views=200, supersample=1, points=500)
    truth = scene_photos("facade", size, tmp_path / "photos")
    assert len(truth) > LARGE_CAPTURE
    manifest = process_images(tmp_path / "photos", tmp_path / "scene")
    assert manifest["mapper"] == "global" and manifest["images"]["registered"] == len(truth)
    scene = load_scene(tmp_path / "scene")
    ids = [int(Path(name).stem) for name in scene.image_names]
    errors = pose_errors(scene.cameras.cam_to_world, truth.cameras.cam_to_world[ids])
    assert errors["center_error_max"] < 0.01 and errors["rotation_error_max_deg"] < 1.0, errors
