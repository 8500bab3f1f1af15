"""COLMAP models: our reader and writer against each other and against pycolmap."""

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import torch

from spatial import SpatialError, load_scene
from spatial.io.colmap import load_colmap, read_model, write_colmap, write_model


def assert_scenes_equal(a, b, atol=1e-5):
    assert a.image_names == b.image_names
    assert a.cameras.model == b.cameras.model
    assert torch.allclose(a.cameras.cam_to_world, b.cameras.cam_to_world, atol=atol)
    assert torch.allclose(a.cameras.K, b.cameras.K, atol=atol)
    assert torch.allclose(a.cameras.dist, b.cameras.dist, atol=atol)
    assert torch.equal(a.cameras.width, b.cameras.width) and torch.equal(a.cameras.height, b.cameras.height)
    assert torch.allclose(a.points, b.points, atol=atol) and torch.equal(a.point_colors, b.point_colors)


@pytest.mark.parametrize("binary", [True, False])
def test_scene_round_trips_through_our_writer(facade_path, tmp_path, binary):
    scene = load_colmap(facade_path)
    shutil.copytree(facade_path / "images", tmp_path / "images")
    write_colmap(scene, tmp_path / "sparse" / "0", binary=binary)
    assert (tmp_path / "sparse" / "0" / ("cameras.bin" if binary else "cameras.txt")).is_file()
    assert_scenes_equal(scene, load_colmap(tmp_path))


def test_text_model_is_read_identically_by_pycolmap(facade_path, tmp_path):
    scene = load_colmap(facade_path)
    write_colmap(scene, tmp_path, binary=False)
    rec = pycolmap.Reconstruction(str(tmp_path))
    assert rec.num_reg_images() == len(scene) and rec.num_points3D() == scene.points.shape[0]
    by_name = {im.name: im for im in rec.images.values()}
    for i, name in enumerate(scene.image_names):
        im = by_name[name]
        w2c = np.asarray(im.cam_from_world().matrix())  # [3, 4]
        np.testing.assert_allclose(w2c, scene.cameras.world_to_cam[i, :3].numpy(), atol=1e-6)
        cam = rec.cameras[im.camera_id]
        assert (cam.width, cam.height) == (int(scene.cameras.width[i]), int(scene.cameras.height[i]))
        np.testing.assert_allclose(cam.calibration_matrix(), scene.cameras.K[i].numpy(), atol=1e-4)
    xyz = np.stack([p.xyz for p in rec.points3D.values()])
    np.testing.assert_allclose(np.sort(xyz, axis=0), np.sort(scene.points.numpy(), axis=0), atol=1e-6)


def test_we_read_what_pycolmap_writes(facade_path, tmp_path):
    """pycolmap's binary and text writers, with tracks, read back by us."""
    rec = pycolmap.Reconstruction(str(facade_path / "sparse" / "0"))
    for sub, write in (("bin", rec.write_binary), ("txt", rec.write_text)):
        (tmp_path / sub).mkdir()
        write(str(tmp_path / sub))
        model = read_model(tmp_path / sub)
        assert set(model.cameras) == set(rec.cameras) and set(model.images) == set(rec.images)
        for image_id, im in rec.images.items():
            ours = model.images[image_id]
            assert ours.name == im.name and ours.camera_id == im.camera_id
            np.testing.assert_allclose(ours.tvec, im.cam_from_world().translation, atol=1e-9)


def test_raw_model_round_trip_keeps_observations_and_tracks(tmp_path):
    rng = np.random.default_rng(0)
    from spatial.io.colmap_model import ColmapCamera, ColmapImage, ColmapModel, ColmapPoints

    cams = {1: ColmapCamera(1, "OPENCV", 640, 480, rng.normal(size=8)),
            3: ColmapCamera(3, "SIMPLE_RADIAL", 320, 240, rng.normal(size=4))}
    images = {i: ColmapImage(i, rng.normal(size=4), rng.normal(size=3), 1 if i < 3 else 3, f"dir/im {i}.jpg",
                             rng.normal(size=(5, 2)), np.array([-1, 0, 1, 2, -1]) + i) for i in (1, 2, 5)}
    points = ColmapPoints(np.array([4, 9]), rng.normal(size=(2, 3)), np.array([[1, 2, 3], [250, 0, 9]], np.uint8),
                          np.array([0.5, 1.5]), [np.array([[1, 0], [2, 3]], np.int32), np.zeros((0, 2), np.int32)])
    model = ColmapModel(cams, images, points)
    for binary in (True, False):
        folder = tmp_path / str(binary)
        write_model(model, folder, binary=binary)
        back = read_model(folder)
        for k, c in cams.items():
            assert back.cameras[k].model == c.model and np.array_equal(back.cameras[k].params, c.params)
        for k, im in images.items():
            b = back.images[k]
            assert b.name == im.name and np.array_equal(b.xys, im.xys) and np.array_equal(b.point3D_ids, im.point3D_ids)
            assert np.array_equal(b.qvec, im.qvec) and np.array_equal(b.tvec, im.tvec)
        assert np.array_equal(back.points.xyz, points.xyz) and np.array_equal(back.points.rgb, points.rgb)
        assert all(np.array_equal(a, b) for a, b in zip(back.points.tracks, points.tracks))


def test_radial_and_simple_pinhole_models_load_as_ours(tmp_path, facade_path):
    shutil.copytree(facade_path / "images", tmp_path / "images")
    model = read_model(facade_path)
    first = next(iter(model.cameras.values()))
    f, cx, cy = first.params[0], first.params[2], first.params[3]
    from spatial.io.colmap_model import ColmapCamera

    model.cameras = {1: ColmapCamera(1, "RADIAL", first.width, first.height, np.array([f, cx, cy, -0.1, 0.02]))}
    for im in model.images.values():
        im.camera_id = 1
    write_model(model, tmp_path / "sparse" / "0", binary=False)
    scene = load_colmap(tmp_path)
    assert scene.cameras.model.value == "OPENCV"
    assert torch.allclose(scene.cameras.dist[0], torch.tensor([-0.1, 0.02, 0.0, 0.0]))


def test_missing_camera_is_a_one_line_error_naming_the_file(facade_path, tmp_path):
    model = read_model(facade_path)
    model.cameras = {}
    write_model(model, tmp_path / "sparse" / "0", binary=False)
    (tmp_path / "images").mkdir()
    with pytest.raises(SpatialError, match=r"images\.txt: image '000\.png' refers to camera 1") as e:
        load_scene(tmp_path)
    assert "\n" not in str(e.value)


def test_missing_and_truncated_files_are_named(facade_path, tmp_path):
    shutil.copytree(facade_path / "sparse", tmp_path / "sparse")
    (tmp_path / "images").mkdir()
    data = (tmp_path / "sparse/0/images.bin").read_bytes()
    (tmp_path / "sparse/0/images.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(SpatialError, match=r"images\.bin: malformed COLMAP images file"):
        load_colmap(tmp_path)
    (tmp_path / "sparse/0/points3D.bin").unlink()
    with pytest.raises(SpatialError, match=r"points3D\.bin: missing from the COLMAP model"):
        load_colmap(tmp_path)


def test_unsupported_camera_model_says_what_to_do(facade_path, tmp_path):
    model = read_model(facade_path)
    from spatial.io.colmap_model import ColmapCamera

    model.cameras = {1: ColmapCamera(1, "FULL_OPENCV", 64, 48, np.zeros(12))}
    write_model(model, tmp_path / "sparse" / "0")
    (tmp_path / "images").mkdir()
    with pytest.raises(SpatialError, match="FULL_OPENCV model.*undistort"):
        load_colmap(tmp_path)


def test_images_folder_missing(facade_path, tmp_path):
    shutil.copytree(facade_path / "sparse", tmp_path / "sparse")
    with pytest.raises(SpatialError, match=r"images: image folder not found"):
        load_colmap(Path(tmp_path))


def test_split_lists_beside_the_model_are_written_and_read(facade_path, tmp_path):
    """nerfstudio's COLMAP reader takes its split from {train,val,test}_list.txt, in the model's image-id order
    otherwise; we write the lists with every COLMAP scene folder and read them back, whatever the ids' order."""
    scene = load_colmap(facade_path)
    scene = replace(scene, train_ids=[i for i in range(len(scene)) if i % 3], test_ids=list(range(0, len(scene), 3)))
    shutil.copytree(facade_path / "images", tmp_path / "images")
    write_colmap(scene, tmp_path / "sparse" / "0")
    names = scene.image_names
    assert (tmp_path / "test_list.txt").read_text().split() == [names[i] for i in scene.test_ids]
    assert (tmp_path / "val_list.txt").read_text() == (tmp_path / "test_list.txt").read_text()
    model = read_model(tmp_path)  # ids in reverse name order, as structure from motion may leave them
    count = len(model.images)
    model.images = {count + 1 - i: replace(im, id=count + 1 - i) for i, im in model.images.items()}
    write_model(model, tmp_path / "sparse" / "0")
    again = load_colmap(tmp_path)
    assert (again.train_ids, again.test_ids) == (scene.train_ids, scene.test_ids)
    (tmp_path / "test_list.txt").unlink()
    with pytest.raises(SpatialError, match=r"test_list\.txt: missing: a scene folder with train_list\.txt needs both "
                                           r"train_list\.txt and test_list\.txt"):
        load_colmap(tmp_path)
    (tmp_path / "test_list.txt").write_text("000.png\nelsewhere.png\n")
    with pytest.raises(SpatialError, match=r"test_list\.txt: lists 'elsewhere\.png', which is not an image of the "
                                           r"scene"):
        load_colmap(tmp_path)
    (tmp_path / "test_list.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(SpatialError, match=r"test_list\.txt: not UTF-8 text \(byte 0\)"):
        load_colmap(tmp_path)


def test_a_camera_without_distortion_is_written_as_pinhole(facade_path, tmp_path):
    """nerfstudio's transforms.json reads as OPENCV with zero coefficients; the 3DGS reference loader takes only
    PINHOLE and SIMPLE_PINHOLE cameras, so that is what we write (a lens with distortion keeps its model)."""
    scene = load_scene(facade_path)  # its transforms.json
    assert scene.source_format == "nerfstudio" and scene.cameras.model.value == "OPENCV"
    write_colmap(scene, tmp_path / "a" / "sparse" / "0")
    assert {c.model.name for c in pycolmap.Reconstruction(str(tmp_path / "a/sparse/0")).cameras.values()} == {"PINHOLE"}
    scene.cameras.dist[:, 0] = -0.05
    write_colmap(scene, tmp_path / "b" / "sparse" / "0")
    assert {c.model.name for c in pycolmap.Reconstruction(str(tmp_path / "b/sparse/0")).cameras.values()} == {"OPENCV"}


def test_convert_says_when_a_lens_the_3dgs_code_cannot_load_is_kept(facade_path, tmp_path, capsys):
    from spatial.cli import main
    from spatial.io import write_transforms

    scene = load_scene(facade_path)
    main(["scene", "convert", str(facade_path), str(tmp_path / "pinhole"), "--to", "colmap"])
    assert "note:" not in capsys.readouterr().out
    scene.cameras.dist[:, 0] = -0.05
    write_transforms(scene, facade_path / "transforms_distorted.json")
    main(["scene", "convert", str(facade_path / "transforms_distorted.json"), str(tmp_path / "lens"), "--to", "colmap"])
    assert "note: the cameras keep their OPENCV lens model: nerfstudio and gsplat read it, the 3DGS reference code " \
           "needs undistorted PINHOLE cameras (spatial process images writes those)" in \
           " ".join(capsys.readouterr().out.split())
