"""Camera paths: generators pass where they should, interpolation is smooth, and JSON round-trips."""

import json
import math

import pytest
import torch

from spatial import SpatialError, load_scene
from spatial.camera_path import (
    CameraPath,
    interpolate_keyframes,
    load_camera_path,
    save_camera_path,
    scene_frame,
    spiral_path,
)
from spatial.camera_path import (
    orbit_path as make_orbit,
)
from spatial.cameras import look_at


def keyframes():
    eye = torch.tensor([[3.0, 0, 1], [0, 3, 1.5], [-3, 0, 1], [0, -3, 2]], dtype=torch.float64)
    return look_at(eye, torch.zeros_like(eye), torch.tensor([0.0, 0, 1], dtype=torch.float64))


def test_interpolation_passes_through_every_keyframe_smoothly():
    keys = keyframes()
    fovs = torch.tensor([40.0, 50, 60, 45])
    path = interpolate_keyframes(keys, fovs, frames=31)  # 10 frames a segment: keys at 0, 10, 20, 30
    for k, f in zip(range(4), (0, 10, 20, 30)):
        torch.testing.assert_close(path.cam_to_world[f], keys[k], atol=1e-6, rtol=0)
        assert abs(float(path.fov_y_degrees[f]) - float(fovs[k])) < 1e-9
    R = path.cam_to_world[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3, dtype=R.dtype).expand_as(R), atol=1e-9, rtol=0)
    # smooth: steps between frames change gradually (no jumps at keyframes)
    steps = (path.cam_to_world[1:, :3, 3] - path.cam_to_world[:-1, :3, 3]).norm(dim=-1)
    assert (steps[1:] - steps[:-1]).abs().max() < 0.5 * steps.mean()


def test_a_looping_path_returns_to_its_start():
    path = interpolate_keyframes(keyframes(), torch.full((4,), 50.0), frames=40, loop=True)
    step = (path.cam_to_world[1, :3, 3] - path.cam_to_world[0, :3, 3]).norm()
    closing = (path.cam_to_world[0, :3, 3] - path.cam_to_world[-1, :3, 3]).norm()
    assert abs(float(closing - step)) < 0.2 * float(step)


def test_fewer_than_two_keyframes_is_refused():
    with pytest.raises(SpatialError, match="at least two keyframes; got 1"):
        interpolate_keyframes(keyframes()[:1], torch.tensor([50.0]), frames=10)


def test_orbit_circles_the_subject_of_the_training_cameras(orbit_path):
    scene = load_scene(orbit_path)
    center, up, radius, height = scene_frame(scene.cameras)
    # the orbit scene's cameras circle (0, 0, 0.4) at radius 3.3 with z up; up is an estimate (within 2 degrees)
    assert float(up @ torch.tensor([0.0, 0.0, 1.0], dtype=up.dtype)) > math.cos(math.radians(2))
    assert (center[:2].norm() < 0.05) and abs(radius - 3.3) < 0.05
    path = make_orbit(scene.cameras, frames=36)
    eyes = path.cam_to_world[:, :3, 3]
    offsets = eyes - center
    around = offsets - (offsets @ up)[:, None] * up
    assert (around.norm(dim=-1) - radius).abs().max() < 1e-6 and ((offsets @ up) - height).abs().max() < 1e-6
    forward = path.cam_to_world[:, :3, 2]
    to_center = torch.nn.functional.normalize(center - eyes, dim=-1)
    assert ((forward * to_center).sum(-1) > 0.9999).all()
    assert path.width == int(scene.cameras.width[0]) and len(path.cameras()) == 36


def test_spiral_stays_near_the_cameras(facade_path):
    scene = load_scene(facade_path)
    path = spiral_path(scene.cameras, frames=20)
    spread = (scene.cameras.centers - scene.cameras.centers.mean(0)).norm(dim=-1).max()
    assert ((path.cam_to_world[:, :3, 3] - scene.cameras.centers.mean(0).double()).norm(dim=-1) <= spread + 1e-6).all()


def test_json_round_trip_and_nerfstudio_layout(tmp_path):
    path = interpolate_keyframes(keyframes(), torch.tensor([40.0, 50, 60, 45]), frames=12, width=320,
                                 height=240, fps=24)
    save_camera_path(path, tmp_path / "path.json")
    data = json.loads((tmp_path / "path.json").read_text())
    assert data["render_width"] == 320 and data["render_height"] == 240 and len(data["camera_path"]) == 12
    assert data["seconds"] == pytest.approx(0.5)
    # nerfstudio stores OpenGL camera axes: the camera looks down -z, so column 2 is minus our forward
    gl = torch.tensor(data["camera_path"][3]["camera_to_world"]).reshape(4, 4)
    torch.testing.assert_close(gl[:3, 2].double(), -path.cam_to_world[3, :3, 2], atol=1e-6, rtol=0)
    back = load_camera_path(tmp_path / "path.json")
    torch.testing.assert_close(back.cam_to_world, path.cam_to_world, atol=1e-9, rtol=0)
    torch.testing.assert_close(back.fov_y_degrees, path.fov_y_degrees)
    assert (back.width, back.height, back.fps, len(back.keyframes)) == (320, 240, 24.0, 4)
    # the cameras see with the stored vertical fov
    K = back.cameras().K[0]
    assert 2 * math.degrees(math.atan(120 / float(K[1, 1]))) == pytest.approx(40.0, abs=1e-4)


def test_bad_path_files_get_clear_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpatialError, match=r"bad\.json: malformed JSON"):
        load_camera_path(bad)
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"camera_path": [{"camera_to_world": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
                                                "fov": 50}]}))
    with pytest.raises(SpatialError, match=r"one\.json: a camera path needs at least two cameras; this one has 1"):
        load_camera_path(one)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"camera_path": [{"fov": 50}, {"fov": 50}]}))
    with pytest.raises(SpatialError, match=r"camera_path\[0\] needs a 16-number 'camera_to_world'"):
        load_camera_path(broken)
    assert isinstance(CameraPath(keyframes(), torch.full((4,), 50.0)).cameras().K, torch.Tensor)


def test_surrounding_tells_object_captures_from_forward_facing_ones(orbit_path, facade_path):
    from spatial import load_scene
    from spatial.camera_path import surrounding

    assert surrounding(load_scene(orbit_path).cameras)  # cameras all around the objects
    assert not surrounding(load_scene(facade_path).cameras)  # one side of a facade
    cameras = load_scene(orbit_path).cameras
    c2w = cameras.cam_to_world
    center = c2w[:, :3, 3].mean(0)
    front = (c2w[:, :3, 3] - center)[:, 0] > 0  # only the cameras on one side of the orbit
    assert not surrounding(cameras[torch.nonzero(front)[:, 0].tolist()])
