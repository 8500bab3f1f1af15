"""transforms.json (nerfstudio / instant-ngp) and the Blender-synthetic layout."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spatial import SpatialError, load_scene
from spatial.io import detect_format, load_blender, load_colmap, load_transforms, write_transforms


def write_png(path, w=8, h=6, rgba=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 4 if rgba else 3), 100, np.uint8)).save(path)


def test_round_trip_with_shared_intrinsics(facade_path):
    colmap = load_colmap(facade_path)
    ns = load_transforms(facade_path / "transforms.json")
    assert ns.image_names == colmap.image_names
    assert ns.train_ids == colmap.train_ids and ns.test_ids == colmap.test_ids
    assert torch.allclose(ns.cameras.cam_to_world, colmap.cameras.cam_to_world, atol=1e-6)
    assert torch.allclose(ns.cameras.K, colmap.cameras.K)
    assert torch.allclose(ns.points, colmap.points) and torch.equal(ns.point_colors, colmap.point_colors)
    meta = json.loads((facade_path / "transforms.json").read_text())
    assert "fl_x" in meta and "fl_x" not in meta["frames"][0]  # shared intrinsics written once


def test_round_trip_with_per_frame_intrinsics_and_distortion(facade_path, tmp_path):
    scene = load_colmap(facade_path)
    scene.cameras.K[3, 0, 0] += 5.0
    scene.cameras.dist[:] = torch.tensor([-0.05, 0.01, 0.001, -0.002])
    write_transforms(scene, facade_path / "transforms_per_frame.json")
    back = load_transforms(facade_path / "transforms_per_frame.json")
    meta = json.loads((facade_path / "transforms_per_frame.json").read_text())
    assert "fl_x" in meta["frames"][0] and meta["camera_model"] == "OPENCV"
    assert torch.allclose(back.cameras.K, scene.cameras.K) and torch.allclose(back.cameras.dist, scene.cameras.dist)
    assert torch.allclose(back.cameras.cam_to_world, scene.cameras.cam_to_world, atol=1e-6)


def test_hand_written_instant_ngp_file(tmp_path):
    """camera_angle_x only, paths without extension, aabb_scale, OpenGL poses."""
    write_png(tmp_path / "images" / "a.png", 40, 30)
    write_png(tmp_path / "images" / "b.png", 40, 30)
    gl_pose = [[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]]  # camera at z=2 looking down -z
    meta = {"camera_angle_x": 2 * math.atan(0.5), "aabb_scale": 16,
            "frames": [{"file_path": "images/a", "transform_matrix": gl_pose},
                       {"file_path": "./images/b.png", "transform_matrix": gl_pose}]}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    scene = load_scene(tmp_path)
    assert scene.metadata["aabb_scale"] == 16
    assert torch.allclose(scene.cameras.K[0], torch.tensor([[40.0, 0, 20], [0, 40.0, 15], [0, 0, 1]]))
    # OpenCV camera: +z forward is world -z, +y down is world -y.
    R = scene.cameras.cam_to_world[0, :3, :3]
    assert torch.allclose(R, torch.diag(torch.tensor([1.0, -1.0, -1.0])))
    uv, z = scene.cameras[0].project(torch.tensor([[0.5, 0.0, 0.0]]))
    assert torch.allclose(uv[0, 0], torch.tensor([20.0, 15.0])) and torch.isclose(z[0, 0], torch.tensor(2.0))


def test_fisheye_and_splits_from_the_file(tmp_path):
    for n in "abc":
        write_png(tmp_path / f"{n}.jpg", 10, 10)
    frame = lambda n: {"file_path": f"{n}.jpg", "transform_matrix": np.eye(4).tolist()}  # noqa: E731
    meta = {"camera_model": "OPENCV_FISHEYE", "fl_x": 5, "fl_y": 5, "cx": 5, "cy": 5, "w": 10, "h": 10,
            "k1": 0.1, "k2": 0.01, "k3": 0.001, "k4": 0.0001, "frames": [frame(n) for n in "abc"],
            "train_filenames": ["a.jpg", "c.jpg"], "test_filenames": ["b.jpg"]}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    scene = load_transforms(tmp_path)
    assert scene.cameras.model.value == "OPENCV_FISHEYE"
    assert torch.allclose(scene.cameras.dist[0], torch.tensor([0.1, 0.01, 0.001, 0.0001]))
    assert scene.train_ids == [0, 2] and scene.test_ids == [1]
    write_transforms(scene, tmp_path / "again.json")  # nerfstudio's parser needs a list for every split
    written = json.loads((tmp_path / "again.json").read_text())
    assert written["val_filenames"] == written["test_filenames"] == ["b.jpg"]
    assert written["train_filenames"] == ["a.jpg", "c.jpg"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"frames": [', r"transforms\.json: malformed JSON at line 1"),
        ('{"fl_x": 5}', r"transforms\.json: no frames"),
        ('{"fl_x": 5, "frames": [{"file_path": "a.png"}]}', r"frame 0 has no transform_matrix"),
        ('{"frames": [{"file_path": "a.png", "transform_matrix": [[1, 0], [0, 1]]}]}', r"no focal length|4x4"),
        ('{"fl_x": 5, "frames": [{"file_path": "missing.png", "transform_matrix": []}]}',
         r"missing\.png: image not found"),
        ('{"fl_x": "wide", "frames": [{"file_path": "a.png", "transform_matrix": '
         '[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}', r"fl_x must be a number"),
    ],
)
def test_malformed_transforms_give_one_line_errors(tmp_path, content, message):
    write_png(tmp_path / "a.png")
    (tmp_path / "transforms.json").write_text(content)
    with pytest.raises(SpatialError, match=message) as e:
        load_scene(tmp_path)
    assert "\n" not in str(e.value)


def test_blender_layout(tmp_path):
    angle = 2 * math.atan(0.5)  # focal length = width
    for split, poses in (("train", [np.eye(4), np.eye(4)]), ("val", [np.eye(4)]), ("test", [np.eye(4)])):
        frames = []
        for i, pose in enumerate(poses):
            write_png(tmp_path / split / f"r_{i}.png", 20, 20, rgba=True)
            frames.append({"file_path": f"./{split}/r_{i}", "rotation": 0.1, "transform_matrix": pose.tolist()})
        (tmp_path / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))
    assert detect_format(tmp_path) == "blender"
    scene = load_scene(tmp_path)
    assert len(scene) == 3 and scene.train_ids == [0, 1] and scene.test_ids == [2]  # val ignored
    assert torch.allclose(scene.cameras.fx, torch.full((3,), 20.0))
    assert scene.image_names[0] == "train/r_0.png" and scene.background_rgb == (1.0, 1.0, 1.0)
    Image.fromarray(np.zeros((20, 20, 4), np.uint8)).save(tmp_path / "train" / "r_0.png")  # fully transparent
    assert np.allclose(scene.load_image(0), 1.0)  # composited on white
    custom = load_blender(tmp_path, background=(0.0, 0.0, 0.0))
    assert np.allclose(custom.load_image(0), 0.0)


def test_blender_bad_camera_angle(tmp_path):
    write_png(tmp_path / "train" / "r_0.png")
    frames = [{"file_path": "train/r_0", "transform_matrix": np.eye(4).tolist()}]
    (tmp_path / "transforms_train.json").write_text(json.dumps({"camera_angle_x": "90", "frames": frames}))
    with pytest.raises(SpatialError, match=r"transforms_train\.json: camera_angle_x must be"):
        load_scene(tmp_path)


def test_blender_images_in_a_linked_folder_keep_their_names_when_allowed(tmp_path, monkeypatch):
    write_png(tmp_path / "elsewhere" / "r_0.png")
    (tmp_path / "scene").mkdir()
    (tmp_path / "scene" / "train").symlink_to(tmp_path / "elsewhere")
    frames = [{"file_path": "./train/r_0", "transform_matrix": np.eye(4).tolist()}]
    (tmp_path / "scene" / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 1.0, "frames": frames}))
    with pytest.raises(SpatialError, match=r"^.*scene/transforms_train\.json: frame 0: file_path '\./train/r_0' leads "
                                           r"outside .*scene \(an absolute path, '\.\.' or a link out\); a scene's "
                                           r"or world's files stay in its folder \(set SPATIAL_ALLOW_OUTSIDE_PATHS=1 "
                                           r"to allow it\)$"):
        load_scene(tmp_path / "scene")
    monkeypatch.setenv("SPATIAL_ALLOW_OUTSIDE_PATHS", "1")
    scene = load_scene(tmp_path / "scene")
    assert scene.image_names == ["train/r_0.png"] and scene.image_paths[0].is_file()


def test_a_blender_image_outside_the_scene_folder_is_refused_by_name(tmp_path):
    write_png(tmp_path / "r_0.png")
    (tmp_path / "scene").mkdir()
    frames = [{"file_path": "../r_0", "transform_matrix": np.eye(4).tolist()}]
    (tmp_path / "scene" / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 1.0, "frames": frames}))
    with pytest.raises(SpatialError, match=r"^.*scene/transforms_train\.json: frame 0: file_path '\.\./r_0' leads "
                                           "outside .*scene "):
        load_scene(tmp_path / "scene")


def test_missing_folder_and_unknown_layout(tmp_path):
    with pytest.raises(SpatialError, match="no such file or folder"):
        load_scene(tmp_path / "nope")
    with pytest.raises(SpatialError, match="no scene found"):
        load_scene(tmp_path)


def test_applied_transform_and_scale_are_undone(facade_path, tmp_path):
    """nerfstudio's converters move COLMAP's world (saved = applied_scale * applied_transform @ original) and say
    so in the file; we read the original world back, cameras and points (tests/test_interop_nerfstudio.py holds
    this against nerfstudio's own colmap_to_json)."""
    scene = load_colmap(facade_path)
    write_transforms(scene, tmp_path / "transforms.json")
    meta = json.loads((tmp_path / "transforms.json").read_text())
    A = np.array([[0, 1, 0, 0.5], [0, 0, 1, -1.0], [1, 0, 0, 2.0], [0, 0, 0, 1]])  # a rotation and a shift
    moved = np.diag([2.5, 2.5, 2.5, 1]) @ A
    for key in ("train_filenames", "test_filenames"):
        meta[key] = [f"images/{Path(name).name}" for name in meta.get(key, [])]  # the images are copied below
    for frame in meta["frames"]:
        frame["file_path"] = f"images/{Path(frame['file_path']).name}"
        T = moved @ np.asarray(frame["transform_matrix"])
        T[:3, :3] /= 2.5  # scale moves centres, never the camera's axes
        frame["transform_matrix"] = T.tolist()
    points = (scene.points.double().numpy() @ A[:3, :3].T + A[:3, 3]) * 2.5
    from spatial.io.points_ply import write_points_ply

    write_points_ply(tmp_path / "sparse_pc.ply", torch.from_numpy(points).float(), scene.point_colors)
    meta.update(applied_transform=A[:3].tolist(), applied_scale=2.5)
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    for image in scene.image_paths:
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / image.name).write_bytes(image.read_bytes())
    back = load_transforms(tmp_path)
    torch.testing.assert_close(back.cameras.cam_to_world, scene.cameras.cam_to_world, atol=1e-5, rtol=0)
    torch.testing.assert_close(back.points, scene.points, atol=1e-5, rtol=0)
    assert back.notes == []

    meta["applied_transform"] = [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(SpatialError, match=r"transforms\.json: applied_transform: the pose's rotation is not a "
                                           r"rotation"):
        load_transforms(tmp_path)
    meta["applied_transform"] = A[:3].tolist()
    meta["applied_scale"] = 0
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(SpatialError, match=r"transforms\.json: applied_scale must be between 1e-06 and 1e\+06, got 0"):
        load_transforms(tmp_path)


def test_masks_and_depth_maps_listed_are_named_as_unused(facade_path, tmp_path):
    meta = json.loads((facade_path / "transforms.json").read_text())
    for i, frame in enumerate(meta["frames"]):
        frame["depth_file_path"] = f"depths/{i}.png"
        if i < 3:
            frame["mask_path"] = f"masks/{i}.png"
    (facade_path / "transforms_extras.json").write_text(json.dumps(meta))
    scene = load_transforms(facade_path / "transforms_extras.json")
    count = len(meta["frames"])
    assert scene.notes == [
        f"transforms_extras.json lists masks (mask_path) for 3 of {count} images; spatial reads the cameras and "
        "trains on every pixel without them",
        f"transforms_extras.json lists depth maps (depth_file_path) for {count} of {count} images; spatial reads "
        "the cameras and trains on every pixel without them"]
