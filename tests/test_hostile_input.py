"""Hostile and broken input, case by case: the exact one-line error a user sees (exit 2), never a
traceback, an allocation of gigabytes or a silently wrong result. tests/test_fuzz.py looks for more."""

from __future__ import annotations

import copy
import gzip
import json
import shutil
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from spatial import SpatialError
from spatial.cli import main
from spatial.formats import save_splats
from spatial.render import rgb_to_sh


def cli_error(capsys, *args) -> str:
    """Run `spatial ARGS`; it must exit 2 with one line on stderr, which is returned."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def splats(n=20):
    g = torch.Generator().manual_seed(0)
    return {"means": torch.randn(n, 3, generator=g), "quats": torch.randn(n, 4, generator=g),
            "scales": torch.full((n, 3), -2.0), "opacities": torch.zeros(n),
            "sh0": rgb_to_sh(torch.rand(n, 1, 3, generator=g)), "shN": torch.zeros(n, 0, 3)}


@pytest.fixture
def facade_copy(facade_path, tmp_path) -> Path:
    """The test facade scene (its images are kilobytes), copied, ready to be broken."""
    folder = tmp_path / "facade"
    shutil.copytree(facade_path, folder, ignore=shutil.ignore_patterns("ground_truth"))
    return folder


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, allow_nan=True))


# ---- JSON readers ------------------------------------------------------------------------------
def test_transforms_json_that_is_not_utf8(facade_copy, capsys):
    file = facade_copy / "transforms.json"
    file.write_bytes(file.read_bytes()[:10] + b"\xff\xfe" + file.read_bytes()[10:])
    assert cli_error(capsys, "scene", "info", facade_copy) == \
        f"error: {file}: not UTF-8 text (byte 10); expected a JSON file"


@pytest.mark.parametrize("key, value, message", [
    ("w", float("nan"), "NaN is not a number JSON allows; spatial's JSON files hold finite numbers only"),
    ("h", float("inf"), "Infinity is not a number JSON allows; spatial's JSON files hold finite numbers only"),
    ("w", "1e400", "1e400 is too large for a 64-bit float; spatial's JSON files hold finite numbers only"),
    ("w", 0, "frame 0: w must be between 1 and 65535, got 0"),
    ("h", 2.5, "frame 0: h must be a whole number, got 2.5"),
    ("fl_x", 0, "frame 0: fl_x must be above 0, got 0"),
    ("fl_x", -30.0, "frame 0: fl_x must be above 0, got -30.0"),
    ("k1", "0.1", "frame 0: k1 must be a number, got '0.1'"),
    ("camera_model", 3, "frame 0: camera_model must be a name such as OPENCV, got 3"),
    ("train_filenames", 7, "train_filenames must be a list of image names, got 7"),
    ("fl_x", 1e-30, "frame 0: focal length fl_x is 1e-30 pixels for an image 64 pixels across; expected 0.64 to "
                    "6.4e+05"),
    ("fl_y", 1e20, "frame 0: focal length fl_y is 1e+20 pixels for an image 48 pixels across; expected 0.48 to "
                   "4.8e+05"),
    ("cx", 1e20, "frame 0: principal point cx is 1e+20, more than an image (64 pixels) away from the image"),
    ("k1", 1e9, "frame 0: k1 must be between -100 and 100, got 1000000000.0"),
    ("applied_scale", 1e-300, "applied_scale must be between 1e-06 and 1e+06, got 1e-300"),
])
def test_transforms_json_values(facade_copy, capsys, key, value, message):
    file = facade_copy / "transforms.json"
    if value == "1e400":  # json.dumps cannot write it: Python reads it as infinity
        file.write_text(file.read_text().replace('"w": 64', '"w": 1e400'))
    else:
        edit_json(file, lambda d: d.__setitem__(key, value))
    assert cli_error(capsys, "scene", "info", facade_copy) == f"error: {file}: {message}"


def test_transforms_json_frames(facade_copy, capsys):
    file = facade_copy / "transforms.json"
    edit_json(file, lambda d: d["frames"][0].__setitem__("file_path", 5))
    assert cli_error(capsys, "scene", "info", facade_copy) == \
        f"error: {file}: frame 0: file_path must be a non-empty string, got 5"
    edit_json(file, lambda d: d["frames"][0].update(file_path="images/000.png", transform_matrix=[[0] * 4] * 4))
    assert cli_error(capsys, "scene", "info", facade_copy) == (
        f"error: {file}: frame 0: the pose's rotation is not a rotation (its 3x3 part must be orthonormal with "
        "determinant 1; determinant 0)")
    far = np.eye(4)
    far[0, 3] = 1e300  # the scene's extent would be infinite
    edit_json(file, lambda d: d["frames"][0].update(transform_matrix=far.tolist()))
    assert cli_error(capsys, "scene", "info", facade_copy) == (
        f"error: {file}: frame 0: the camera is 1e+300 units from the origin, beyond the 1e+07 a scene spans")
    edit_json(file, lambda d: d["frames"][0].update(file_path="/etc/hostname", transform_matrix=np.eye(4).tolist()))
    assert cli_error(capsys, "scene", "info", facade_copy) == (
        f"error: {file}: frame 0: file_path '/etc/hostname' leads outside {facade_copy} (an absolute path, '..' or a "
        "link out); a scene's or world's files stay in its folder (set SPATIAL_ALLOW_OUTSIDE_PATHS=1 to allow it)")


def test_blender_and_nerfstudio_readers_refuse_nul_and_overlong_names(orbit_path, tmp_path, capsys):
    folder = tmp_path / "orbit"
    shutil.copytree(orbit_path, folder, ignore=shutil.ignore_patterns("ground_truth"))
    file = folder / "transforms_train.json"
    edit_json(file, lambda d: d["frames"][0].__setitem__("file_path", "a\x00b"))
    assert cli_error(capsys, "scene", "info", folder) == \
        f"error: {file}: frame 0: file_path must be a non-empty string, got 'a\\x00b'"
    edit_json(file, lambda d: d["frames"][0].__setitem__("file_path", "x" * 5000))
    assert "not a usable image path ([Errno 36] File name too long" in cli_error(capsys, "scene", "info", folder)


# ---- camera paths ----------------------------------------------------------------------------------
@pytest.fixture
def path_file(tmp_path) -> Path:
    from spatial.camera_path import CameraPath, save_camera_path
    from spatial.cameras import look_at

    eyes = torch.tensor([[0.0, -1.0, -4.0], [1.0, -1.0, -4.0]], dtype=torch.float64)
    c2w = look_at(eyes, torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64))
    file = tmp_path / "path.json"
    save_camera_path(CameraPath(c2w, torch.full((2,), 50.0, dtype=torch.float64), 32, 24, 10.0), file)
    save_splats(splats(), tmp_path / "model.ply")
    return file


@pytest.mark.parametrize("key, value, message", [
    ("render_width", 0, "render_width must be between 1 and 65535, got 0"),
    ("render_width", -5, "render_width must be between 1 and 65535, got -5"),
    ("render_width", 1_000_000_000, "render_width must be between 1 and 65535, got 1000000000"),
    ("render_height", 200000, "render_height must be between 1 and 65535, got 200000"),
    ("fps", 0, "fps must be between 0.1 and 1000, got 0"),
    ("fps", -1, "fps must be between 0.1 and 1000, got -1"),
    ("fps", 1e30, "fps must be between 0.1 and 1000, got 1e+30"),
    ("fps", 1e-300, "fps must be between 0.1 and 1000, got 1e-300"),
    ("fps", float("nan"), "NaN is not a number JSON allows; spatial's JSON files hold finite numbers only"),
    ("render_width", "640", "render_width must be a whole number, got '640'"),
])
def test_camera_path_values(path_file, capsys, key, value, message):
    edit_json(path_file, lambda d: d.__setitem__(key, value))
    error = cli_error(capsys, "render", path_file.parent / "model.ply", "--path", path_file, "--out",
                      path_file.parent / "frames", "--device", "cpu")
    assert error == f"error: {path_file}: {message}"


def test_camera_path_poses_and_sizes(path_file, capsys):
    model, out = path_file.parent / "model.ply", path_file.parent / "frames"
    edit_json(path_file, lambda d: d["camera_path"][1].__setitem__("camera_to_world", [0] * 16))
    assert cli_error(capsys, "render", model, "--path", path_file, "--out", out) == (
        f"error: {path_file}: camera_path[1]: the pose's rotation is not a rotation (its 3x3 part must be "
        "orthonormal with determinant 1; determinant 0)")
    edit_json(path_file, lambda d: d["camera_path"][1].update(camera_to_world=d["camera_path"][0]["camera_to_world"],
                                                              fov=0))
    assert cli_error(capsys, "render", model, "--path", path_file, "--out", out) == \
        f"error: {path_file}: camera_path[1]: fov must be between 0.01 and 179.9, got 0"
    edit_json(path_file, lambda d: d["camera_path"][1].__setitem__("fov", 1e-9))
    assert cli_error(capsys, "render", model, "--path", path_file, "--out", out) == \
        f"error: {path_file}: camera_path[1]: fov must be between 0.01 and 179.9, got 1e-09"
    edit_json(path_file, lambda d: d["camera_path"][1].update(fov=50, camera_to_world=[1, 0, 0, 1e300, 0, 1, 0, 0,
                                                                                       0, 0, 1, 0, 0, 0, 0, 1]))
    assert cli_error(capsys, "render", model, "--path", path_file, "--out", out) == (
        f"error: {path_file}: camera_path[1]: the camera is 1e+300 scene units from the origin, beyond the 1e+07 a "
        "world spans")
    edit_json(path_file, lambda d: d["camera_path"][1].update(camera_to_world=d["camera_path"][0]["camera_to_world"]))
    edit_json(path_file, lambda d: d.update(render_width=65535, render_height=2))
    video = path_file.parent / "path.mp4"
    assert cli_error(capsys, "render", model, "--path", path_file, "--out", video) == (
        f"error: {video}: H.264 video frames are at most 16,384 pixels a side, not 65535x2; render a smaller size, or "
        "frames to a folder")
    assert not video.exists()
    edit_json(path_file, lambda d: d.update(render_width=8000, render_height=8000))  # 256 MB a frame
    assert cli_error(capsys, "render", model, "--path", path_file, "--out", out) == (
        "error: 8000x8000 frames are larger than --max-pixels 33,177,600; pass a larger --max-pixels to render "
        "them, or a smaller --width/--height")
    assert cli_error(capsys, "render", model, "--path", path_file, "--out", out, "--fps", "0") == \
        "error: --fps must be above 0 and at most 1000, got 0.0"
    assert not out.exists()


# ---- world files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda d: d.__setitem__("layers", [1]), "layers[0] must be an object with 'name', 'file' and 'transform', got 1"),
    (lambda d: d["layers"][0].pop("file"), "layers[0]: file must be a non-empty string, got None"),
    (lambda d: d["layers"][0].pop("transform"),
     "layers[0]: transform must be a finite 4x4 matrix (a layer's transform is a 4x4 similarity)"),
    (lambda d: d["layers"][0].__setitem__("transform", np.eye(3).tolist()),
     "layers[0]: transform must be a finite 4x4 matrix (a layer's transform is a 4x4 similarity)"),
    (lambda d: d["layers"][0].__setitem__("transform", np.diag([1, 2, 1, 1.0]).tolist()),
     "layers[0]: transform shears or stretches (its 3x3 part is not a rotation times one scale) (a layer's "
     "transform is a 4x4 similarity)"),
    (lambda d: d["layers"][0].__setitem__("transform", np.diag([-1, 1, 1, 1.0]).tolist()),
     "layers[0]: transform mirrors or flattens the world (determinant -1); a similarity only moves, turns and "
     "scales (a layer's transform is a 4x4 similarity)"),
    (lambda d: d["layers"][0].__setitem__("transform", np.diag([1e200, 1e200, 1e200, 1]).tolist()),
     "layers[0]: transform scales by 1e+200, outside 1e-06 to 1e+06 (a layer's transform is a 4x4 similarity)"),
    (lambda d: d["layers"][0].__setitem__("transform", np.diag([1e20, 1e20, 1e20, 1]).tolist()),
     "layers[0]: transform scales by 1e+20, outside 1e-06 to 1e+06 (a layer's transform is a 4x4 similarity)"),
    (lambda d: d["layers"][0]["transform"][0].__setitem__(3, 1e300),
     "layers[0]: transform moves by 1e+300, beyond 1e+07 scene units (a layer's transform is a 4x4 similarity)"),
    (lambda d: d["layers"][0].__setitem__("transform", float("nan")),
     "NaN is not a number JSON allows; spatial's JSON files hold finite numbers only"),
    (lambda d: d["layers"][0].__setitem__("visible", "yes"), "layers[0]: visible must be true or false, got 'yes'"),
    (lambda d: d["layers"][0].__setitem__("locked", 1), "layers[0]: locked must be true or false, got 1"),
])
def test_world_files(tmp_path, change, message):
    from spatial_viewer.cli import build_app
    from spatial_viewer.world import World

    world = World()
    world.add_layer("a", splats())
    file = tmp_path / "scene.world.json"
    world.save_world(file)
    edit_json(file, change)
    with pytest.raises(SpatialError) as error:
        build_app([file], tmp_path / "edited.ply", thumbnails=False)  # what `spatial view` does before serving
    assert str(error.value) == f"{file}: {message}"


# ---- splat and point files -------------------------------------------------------------------------
def test_ply_with_no_or_impossibly_many_vertices(tmp_path, capsys):
    file = tmp_path / "model.ply"
    save_splats(splats(), file)
    data = file.read_bytes()
    empty = data.replace(b"element vertex 20", b"element vertex 0")[:data.index(b"end_header") + 11]
    file.write_bytes(empty)
    assert cli_error(capsys, "export", "splat", file) == f"error: {file}: holds no Gaussians (0 vertices)"
    file.write_bytes(data.replace(b"element vertex 20", b"element vertex 1000000000000"))
    body = len(data) - data.index(b"end_header") - 11
    assert cli_error(capsys, "export", "splat", file) == (
        f"error: {file}: its header declares 1,000,000,000,000 vertex rows (at least 68,000,000,000,000 bytes) but "
        f"only {body:,} bytes follow it: the file is truncated or damaged")


def test_splat_files_with_zero_rotations_or_absurd_sizes(tmp_path, capsys):
    params = splats()
    params["quats"][3] = 0
    save_splats(params, tmp_path / "a.ply")
    assert cli_error(capsys, "export", "spz", tmp_path / "a.ply") == \
        f"error: {tmp_path / 'a.ply'}: 1 of 20 Gaussians have a zero rotation quaternion"
    params = splats()
    params["scales"][0, 0] = 1e20
    save_splats(params, tmp_path / "b.ply")
    assert cli_error(capsys, "export", "spz", tmp_path / "b.ply") == (
        f"error: {tmp_path / 'b.ply'}: log-scales reach 1e+20, outside -40 to 30 (sizes of e^-40 to e^30); the file "
        "is damaged")


def test_spz_with_impossible_fractional_bits(tmp_path, capsys):
    file = tmp_path / "model.spz"
    save_splats(splats(), file)
    data = bytearray(gzip.decompress(file.read_bytes()))
    data[13] = 255  # fractional_bits (magic 4, version 4, count 4, degree 1)
    file.write_bytes(gzip.compress(bytes(data)))
    assert cli_error(capsys, "export", "ply", file) == \
        f"error: {file}: implausible header: 255 fractional bits for 24-bit positions"


def test_point_clouds_with_nan_points(facade_copy, capsys):
    from spatial.io.points_ply import read_points_ply, write_points_ply

    points, colors = read_points_ply(facade_copy / "sparse_pc.ply")
    points[:3] = float("nan")
    write_points_ply(facade_copy / "sparse_pc.ply", points, colors)
    assert cli_error(capsys, "scene", "info", facade_copy / "transforms.json") == \
        f"error: {facade_copy / 'sparse_pc.ply'}: 3 points have NaN or infinite coordinates"


# ---- COLMAP models ---------------------------------------------------------------------------------
def test_colmap_zero_quaternion_and_bad_focal_length(facade_copy, capsys):
    from spatial.io.colmap import read_model, write_model

    model_dir = facade_copy / "sparse" / "0"
    (facade_copy / "transforms.json").unlink()
    model = read_model(model_dir)
    broken = copy.deepcopy(model)
    first = sorted(broken.images.values(), key=lambda im: im.name)[0]
    first.qvec[:] = 0
    write_model(broken, model_dir)
    assert cli_error(capsys, "scene", "info", facade_copy) == \
        f"error: {model_dir}: image '{first.name}' has a non-finite or zero pose (qvec [0.0, 0.0, 0.0, 0.0])"
    broken = copy.deepcopy(model)
    camera = next(iter(broken.cameras.values()))
    camera.params[0] = 0.0
    write_model(broken, model_dir)
    assert cli_error(capsys, "scene", "info", facade_copy).startswith(
        f"error: {model_dir}: camera {camera.id} has a focal length that is not positive, or non-finite parameters")


# ---- output paths ------------------------------------------------------------------------------------
def test_training_into_a_file_or_an_unwritable_folder(orbit_path, tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("x")
    assert cli_error(capsys, "train", "splat", orbit_path, "--out", existing, "--preset", "cpu") == \
        f"error: {existing}: is a file, not a folder; choose another --out for the training run"
    inside = existing / "run"
    assert cli_error(capsys, "train", "splat", orbit_path, "--out", inside, "--preset", "cpu") == \
        f"error: {inside}: cannot write the training run there (Not a directory); choose another --out"


# ---- degenerate captures -----------------------------------------------------------------------------
def test_captures_that_cannot_train_well_are_named(orbit_path, tmp_path):
    from PIL import Image

    from spatial import load_scene
    from spatial.splats.trainer import SplatTrainer
    from tests.helpers import small_config

    folder = tmp_path / "orbit"
    shutil.copytree(orbit_path, folder, ignore=shutil.ignore_patterns("ground_truth"))
    train = sorted((folder / "train").glob("*.png"))
    Image.new("RGBA", Image.open(train[0]).size, (0, 0, 0, 255)).save(train[0])  # a black frame
    trainer = SplatTrainer(load_scene(folder), small_config(2), tmp_path / "run")
    assert trainer.warnings == [f"1 of {len(train)} training images are nearly one colour (first: "
                                f"{load_scene(folder).image_names[0]}); they teach the model nothing: remove them, "
                                "or check the capture"]
    for other in train[2:]:
        shutil.copy(train[1], other)  # a camera that never moved
    Image.open(train[1]).save(train[0])
    trainer = SplatTrainer(load_scene(folder), small_config(2), tmp_path / "run2")
    assert trainer.warnings == [f"all {len(train)} training images show the same picture; a 3D model needs views "
                                "from different positions"]


# ---- the viewer's WebSocket ---------------------------------------------------------------------------
def test_the_viewer_refuses_websockets_from_other_sites(tmp_path):
    import viser
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from spatial_viewer.app import ViewerApp
    from spatial_viewer.world import World

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = ViewerApp(World(), [], None, None, tmp_path / "edited.ply")
    app.start("127.0.0.1", port)
    try:
        url, protocol = f"ws://127.0.0.1:{port}", [f"viser-v{viser.__version__}"]
        for origin in ("http://evil.example", f"http://evil.example:{port}", f"http://127.0.0.1:{port + 1}"):
            with pytest.raises(InvalidStatus) as refused:
                connect(url, origin=origin, subprotocols=protocol, open_timeout=10)
            assert refused.value.response.status_code == 403, origin
        with pytest.raises(InvalidStatus) as refused:  # its own Origin and another: refused, not a server error
            connect(url, origin=f"http://127.0.0.1:{port}", additional_headers=[("Origin", "http://evil.example")],
                    subprotocols=protocol, open_timeout=10)
        assert refused.value.response.status_code == 403
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", None):  # its page, or no browser
            with connect(url, origin=origin, subprotocols=protocol, open_timeout=10) as ws:
                assert ws.subprotocol == protocol[0]
    finally:
        app.stop()


def test_a_ply_header_count_is_checked_before_any_allocation(tmp_path):
    from spatial.io.ply_header import check_ply_header

    file = tmp_path / "points.ply"
    header = b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n" \
             b"property float z\nend_header\n"
    file.write_bytes(header + struct.pack("<9f", *range(9)))
    check_ply_header(file)  # exactly enough bytes
    file.write_bytes(header + struct.pack("<8f", *range(8)))
    with pytest.raises(SpatialError, match="declares 3 vertex rows \\(at least 36 bytes\\) but only 32 bytes"):
        check_ply_header(file)
