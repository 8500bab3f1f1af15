"""Images (EXIF orientation, errors, downscale cache) and Scene operations."""

import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from spatial import SpatialError, load_scene
from spatial.images import exif_orientation, image_size, read_image
from spatial.scene import every_nth_split


def save_with_orientation(path, pixels, orientation):
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes(), quality=100, subsampling=0)


def test_exif_orientation_six_is_rotated_upright(tmp_path):
    """Orientation 6: the stored pixels must be rotated 90 degrees clockwise to view."""
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :, 0] = 255  # red band along the stored top edge
    save_with_orientation(tmp_path / "a.jpg", stored, 6)
    assert exif_orientation(tmp_path / "a.jpg") == 6
    assert image_size(tmp_path / "a.jpg") == (40, 60)  # displayed size, header only
    upright = read_image(tmp_path / "a.jpg")
    assert upright.shape == (60, 40, 3)
    # Rotating clockwise puts the stored top edge on the right.
    assert upright[:, -5:, 0].mean() > 200 and upright[:, :20, 0].mean() < 30


@pytest.mark.parametrize("orientation, expect", [(1, lambda a: a), (3, lambda a: np.rot90(a, 2)),
                                                  (8, lambda a: np.rot90(a, 1)), (6, lambda a: np.rot90(a, -1))])
def test_each_rotation(tmp_path, orientation, expect):
    stored = (np.arange(12 * 16 * 3).reshape(12, 16, 3) % 251).astype(np.uint8)
    path = tmp_path / "a.png"
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes())
    assert np.array_equal(read_image(path), expect(stored))


def test_monstree_photos_are_upright(shared_data):
    photos = sorted((shared_data / "monstree" / "images").glob("*.[jJ][pP]*[gG]"))
    assert len(photos) == 23
    assert exif_orientation(photos[0]) == 6
    with Image.open(photos[0]) as raw:
        raw_w, raw_h = raw.size
    assert raw_w > raw_h  # stored sideways...
    pixels = read_image(photos[0])
    assert pixels.shape[:2] == (raw_w, raw_h)  # ...read upright (portrait)
    assert image_size(photos[0]) == (raw_h, raw_w)


def test_sceaux_photos_read(shared_data):
    photos = sorted((shared_data / "sceaux_castle" / "images").glob("*.[jJ][pP]*[gG]"))
    assert len(photos) == 11
    assert image_size(photos[0]) == (2832, 2128)


def test_unreadable_and_corrupt_images_are_named(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(SpatialError, match=r"notes\.jpg: not a readable image"):
        read_image(tmp_path / "notes.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "c.jpg")
    data = (tmp_path / "c.jpg").read_bytes()
    (tmp_path / "c.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(SpatialError, match=r"c\.jpg: image data is corrupt"):
        read_image(tmp_path / "c.jpg")
    with pytest.raises(SpatialError, match=r"gone\.png: image not found"):
        read_image(tmp_path / "gone.png")


def test_scene_with_an_unreadable_image_names_it(facade_path, tmp_path):
    import shutil

    shutil.copytree(facade_path, tmp_path / "s")
    (tmp_path / "s" / "images" / "003.png").write_bytes(b"garbage")
    with pytest.raises(SpatialError, match=r"003\.png: not a readable image"):
        load_scene(tmp_path / "s")


def test_downscale_cache(facade_path, tmp_path):
    import shutil

    shutil.copytree(facade_path, tmp_path / "s")
    scene = load_scene(tmp_path / "s")
    small = scene.downscaled(2)
    assert small.image_paths[0] == tmp_path / "s" / "images_2" / "000.png"
    assert small.image_paths[0].is_file()
    assert (int(small.cameras.width[0]), int(small.cameras.height[0])) == (32, 24)
    pixels = small.load_image(0)
    assert pixels.shape == (24, 32, 3)
    full = scene.load_image(0)
    assert np.abs(pixels - full.reshape(24, 2, 32, 2, 3).mean((1, 3))).mean() < 0.03
    # A second call reuses the cache; touching the source invalidates it.
    mtime = small.image_paths[0].stat().st_mtime
    scene.downscaled(2)
    assert small.image_paths[0].stat().st_mtime == mtime
    time.sleep(0.01)
    os.utime(scene.image_paths[0])
    scene.downscaled(2)
    assert small.image_paths[0].stat().st_mtime > mtime


def test_split_holds_out_every_eighth():
    train, test = every_nth_split(20)
    assert test == [0, 8, 16] and len(train) == 17 and not set(train) & set(test)
    assert every_nth_split(5, 0) == ([0, 1, 2, 3, 4], [])


@pytest.mark.parametrize("which", ["orbit_path", "facade_path"])
def test_normalized_scene_projects_identically(request, which):
    scene = load_scene(request.getfixturevalue(which))
    norm = scene.normalized()
    centers = norm.cameras.centers
    assert torch.isclose(torch.linalg.norm(centers, dim=-1).max(), torch.tensor(1.0), atol=1e-5)
    up = -norm.cameras.cam_to_world[:, :3, 1].mean(0)
    assert torch.allclose(torch.nn.functional.normalize(up, dim=0), torch.tensor([0.0, 0, 1]), atol=1e-5)
    uv, z = scene.cameras.project(scene.points[:50])
    uv_n, z_n = norm.cameras.project(norm.points[:50])
    assert torch.allclose(uv, uv_n, atol=2e-3)
    # world_from_source maps the original points onto the normalised ones.
    T = norm.world_from_source
    assert torch.allclose(scene.points @ T[:3, :3].T + T[:3, 3], norm.points, atol=1e-5)
