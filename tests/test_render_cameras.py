"""Stereo and 360-degree frames (spatial/rigs.py), the labels players read (spatial/spherical_video.py), and the
culling that makes a view of part of a world cost that part (spatial.render.projection.may_be_seen)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from spatial.camera_path import CameraPath
from spatial.cameras import Cameras, look_at
from spatial.errors import SpatialError
from spatial.render import RenderOptions
from spatial.render_path import frame_image, path_frames, render_camera_path
from spatial.rigs import make_rig
from spatial.splats.model import render_splats
from spatial.trained import SplatModel
from spatial.video_out import read_video, write_video
from tests.helpers import random_splat_params

RADIUS = 2.0  # the shell's distance from the origin


@pytest.fixture(scope="module")
def shell() -> SplatModel:
    """Flat splats tangent to a sphere RADIUS around the origin, each a little nearer or farther (so that which one
    is in front is the same from any camera at the centre), coloured by direction (a view in the wrong direction
    shows the wrong colours) with stripes on top, and a blob in front (+z)."""
    g = torch.Generator().manual_seed(3)
    n = 8000
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    stripes = 0.15 * torch.sign(torch.sin(6 * torch.atan2(d[:, 0], d[:, 2])))[:, None]  # 12 stripes around
    rgb = (d * 0.35 + 0.5 + stripes).clamp(0.02, 0.98)
    x = torch.tensor([1.0, 0.0, 0.0])
    # wxyz turning the splat's x axis (its thin one) onto the normal
    quats = torch.nn.functional.normalize(torch.cat([(1 + d @ x)[:, None], torch.linalg.cross(x.expand_as(d), d)], -1),
                                          dim=-1)
    params = {
        "means": d * (RADIUS + 0.2 * torch.rand(n, 1, generator=g) - 0.1),
        "quats": quats,
        "scales": torch.log(torch.tensor([0.005, 0.09, 0.09])).expand(n, 3).clone(),
        "opacities": torch.full((n,), 2.0),
        "sh0": ((rgb - 0.5) / 0.28209479177387814)[:, None],
        "shN": torch.zeros(n, 0, 3),
    }
    blob = random_splat_params(300, 0, seed=1)
    blob["means"] = blob["means"] * 0.3 + torch.tensor([0.2, 0.1, 1.2])
    params = {k: torch.cat([params[k], blob[k]]) for k in params}
    return SplatModel(params, Path("shell"))


def pinhole(c2w: torch.Tensor, f: float, width: int, height: int) -> Cameras:
    K = torch.tensor([[[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]]])
    return Cameras(c2w.float().reshape(1, 4, 4), K, width, height)


def looking(direction: torch.Tensor, eye=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """`[4, 4]` a camera at `eye` looking along `direction`, its top towards -y (the scene's up) where it can."""
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    if abs(float(direction @ up)) > 0.99:
        up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    return look_at(torch.tensor([eye], dtype=torch.float64), torch.tensor([eye]) + direction[None], up[None])[0]


def test_each_eye_is_the_camera_moved_half_the_eye_distance_along_its_x_axis(shell):
    c2w = looking(torch.tensor([0.3, 0.1, 1.0], dtype=torch.float64))
    camera = pinhole(c2w, 60.0, 96, 64)
    for layout in ("sbs", "tb"):
        frame = frame_image(make_rig(f"stereo-{layout}", ipd=0.2).render(shell, camera))
        eyes = []
        for side in (-1, 1):
            moved = c2w.clone()
            moved[:3, 3] += side * 0.1 * c2w[:3, 0]  # the camera's x axis: its right
            eyes.append(frame_image(next(shell.render_frames(pinhole(moved, 60.0, 96, 64)))))
        expected = np.concatenate(eyes, 1 if layout == "sbs" else 0)
        assert frame.shape == expected.shape == ((64, 192, 3) if layout == "sbs" else (128, 96, 3))
        np.testing.assert_array_equal(frame, expected)  # to the pixel
        assert np.abs(eyes[0].astype(int) - eyes[1]).mean() > 2  # and the eyes do differ


def direction_of(i: float, j: float, W: int, H: int) -> torch.Tensor:
    """The ray through pixel (row i, column j) of a W x H equirectangular panorama, in its own OpenCV frame."""
    lon, lat = -math.pi + (j + 0.5) / W * 2 * math.pi, math.pi / 2 - (i + 0.5) / H * math.pi
    return torch.tensor([math.cos(lat) * math.sin(lon), -math.sin(lat), math.cos(lat) * math.cos(lon)],
                        dtype=torch.float64)


@pytest.mark.parametrize("antialiased", [False, True])
def test_a_panorama_pixel_is_what_a_pinhole_looking_that_way_sees(shell, antialiased):
    """Within interpolation error: the pixel of direction (lon, lat) lies within what a pinhole looking that way
    sees at its centre pixel and the eight around it, at the same angular sampling (the panorama linearises each
    Gaussian where it is, the pinhole on its axis); its depth is the distance along the ray. Latitudes beyond 60
    degrees are left out: towards the poles a splat's footprint on the panorama is approximate
    (spatial.render.projection.project_equirect; the top row is checked by the next test)."""
    W, H = 192, 96
    heading = looking(torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64))  # pitched down: the panorama is level
    rig = make_rig("equirect", up=torch.tensor([0.0, -1.0, 0.0]))
    out = rig.render(shell, pinhole(heading, 50.0, W, H)) if not antialiased else \
        next(shell.render_frames(rig.views(pinhole(heading, 50.0, W, H)), options=RenderOptions(antialiased=True)))
    assert out.rgb.shape == (1, H, W, 3)
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(H // 6, H - H // 6, (80,), generator=g)  # up to 60 degrees from the horizon
    cols = torch.randint(0, W, (80,), generator=g)
    cols[:8] = torch.tensor([0, 1, W - 2, W - 1, 0, W - 1, 1, W - 2])  # the seam, behind
    f = W / (2 * math.pi)  # the panorama's pixels per radian
    misses, errors = [], []
    for i, j in zip(rows.tolist(), cols.tolist()):
        ref = next(shell.render_frames(pinhole(looking(direction_of(i, j, W, H)), f, 9, 9),
                                       options=RenderOptions(antialiased=antialiased)))
        around = ref.rgb[0, 3:6, 3:6].reshape(-1, 3)  # [9, 3] the centre pixel (on the axis) and its neighbours
        depths = ref.depth[0, 3:6, 3:6].reshape(-1)  # camera-z, which is the ray's length within 0.1% there
        value, depth = out.rgb[0, i, j], out.depth[0, i, j, 0]
        if ((value < around.min(0).values - 0.01) | (value > around.max(0).values + 0.01)).any() \
                or not 0.99 * depths.min() < depth < 1.01 * depths.max():
            misses.append((i, j))
        errors.append(float((value - ref.rgb[0, 4, 4]).abs().max()))
    print(len(misses), misses, sorted(errors)[-10:])
    assert not misses, (misses, errors)
    assert np.median(errors) < 0.02


def test_a_nerf_panorama_pixel_is_the_ray_in_that_direction():
    """A NeRF draws the panorama's rays themselves: each pixel equals a pinhole's centre pixel looking that way
    (a new, untrained field: any field will do for where the rays go), depth the distance along the ray."""
    from spatial.nerf.field import FieldConfig, SpaceMap
    from spatial.nerf.hash_encoding import HashConfig
    from spatial.nerf.model import ModelConfig, NerfModel
    from spatial.nerf.trained import TrainedNerf

    config = ModelConfig(field=FieldConfig(hash=HashConfig(levels=2, log2_table_size=8, max_resolution=16)),
                         proposal_hash=(HashConfig(levels=2, log2_table_size=8, max_resolution=16),),
                         proposal_samples=(16,), field_samples=8)
    torch.manual_seed(0)
    space = SpaceMap(torch.zeros(3), torch.full((3,), 1.0), bounded=False, density_scale=20.0)
    nerf = TrainedNerf(NerfModel(space, config, num_images=1).eval(), Path("nerf"), background=(0.0, 0.0, 0.0))
    W, H = 32, 16
    heading = looking(torch.tensor([0.3, 0.0, 1.0], dtype=torch.float64))
    out = make_rig("equirect", up=torch.tensor([0.0, -1.0, 0.0])).render(nerf, pinhole(heading, 20.0, W, H))
    axes = heading[:3, :3]  # level already: the panorama's frame is the camera's
    for i, j in ((8, 16), (3, 5), (12, 30), (7, 0)):
        direction = axes @ direction_of(i, j, W, H)
        ref = next(nerf.render_frames(pinhole(looking(direction), 10.0, 3, 3)))
        torch.testing.assert_close(out.rgb[0, i, j], ref.rgb[0, 1, 1], atol=2e-4, rtol=0)
        assert float(out.depth[0, i, j, 0]) == pytest.approx(float(ref.depth[0, 1, 1, 0]), rel=2e-3)


def test_a_panorama_is_centred_on_the_heading_and_level(shell):
    """The middle column looks along the heading (the blob at +z), the top row straight up (-y, the scene's up),
    whatever the camera's pitch and roll."""
    W, H = 128, 64
    tilted = looking(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    roll = torch.eye(4, dtype=torch.float64)
    roll[:2, :2] = torch.tensor([[math.cos(0.4), -math.sin(0.4)], [math.sin(0.4), math.cos(0.4)]])
    frames = []
    for c2w in (looking(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)), tilted, tilted @ roll):
        frames.append(make_rig("equirect", up=torch.tensor([0.0, -1.0, 0.0])).render(shell, pinhole(c2w, 50, W, H)))
    for out in frames[1:]:
        torch.testing.assert_close(out.rgb, frames[0].rgb, atol=0.02, rtol=0)  # levelled: the same panorama
    up = next(shell.render_frames(pinhole(looking(torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)), 10, 5, 5)))
    assert (frames[0].rgb[0, 0].mean(0) - up.rgb[0, 2, 2]).abs().max() < 0.05  # the top row: straight up
    front = next(shell.render_frames(pinhole(looking(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)), 20, 5, 5)))
    assert (frames[0].rgb[0, H // 2, W // 2] - front.rgb[0, 2, 2]).abs().max() < 0.1  # the middle: ahead
    assert frames[0].depth[0, H // 2, W // 2] < 1.6  # the blob, nearer than the shell


def test_vr180_eyes_are_the_front_halves_of_panoramas_from_each_eye(shell):
    W = 64
    c2w = looking(torch.tensor([0.2, 0.0, 1.0], dtype=torch.float64))
    up = torch.tensor([0.0, -1.0, 0.0])
    vr = make_rig("vr180", ipd=0.3, up=up)
    frame = vr.render(shell, pinhole(c2w, 50, W, W))
    assert frame.rgb.shape == (1, W, 2 * W, 3)
    assert vr.label.bounds == (0.0, 0.0, 0.25, 0.25) and vr.label.stereo == "left-right"
    full = make_rig("equirect", up=up)
    right = vr.levelled(pinhole(c2w, 50, W, W))[:, 0].float()  # the level right, along which the eyes sit
    for e, side in enumerate((-1, 1)):
        moved = c2w.clone().float()
        moved[:3, 3] += side * 0.15 * right
        pano = full.render(shell, pinhole(moved, 50, 2 * W, W))
        # within 60 degrees of the horizon: towards the poles, splats' footprints are wider than the half-panorama,
        # and the full panorama does not wrap those wider than half a turn (spatial.render.projection.wrapped)
        rows = slice(W // 6, W - W // 6)
        torch.testing.assert_close(frame.rgb[0, rows, e * W:(e + 1) * W], pano.rgb[0, rows, W // 2:W // 2 + W],
                                   atol=1e-4, rtol=0)


def test_culling_leaves_every_render_as_it_was():
    """SplatModel.render_frames projects only what a camera may see; the picture and the per-Gaussian outputs are
    those of rendering everything (here, views that see a part of the world, a close-up and one with nothing)."""
    params = random_splat_params(2000, 2, seed=4)
    params["means"] = params["means"] * 3
    model = SplatModel(params, Path("world"))
    cameras = [pinhole(looking(torch.tensor(d, dtype=torch.float64), eye), f, 80, 60)
               for d, eye, f in (((1.0, 0.2, 0.3), (0, 0, 0), 40), ((0.0, 0.0, 1.0), (0, 0, -2.5), 200),
                                 ((0.0, 0.0, -1.0), (0, 0, -9), 40))]
    for antialiased in (False, True):
        options = RenderOptions(antialiased=antialiased)
        for camera in cameras:
            out = next(model.render_frames(camera, options=options))
            full = render_splats(params, camera.world_to_cam, camera.K, 80, 60, 2, torch.zeros(3), options)
            for name in ("rgb", "alpha", "depth", "means2d", "radii"):
                a, b = getattr(out, name), getattr(full, name)
                if name in ("means2d",):
                    a, b = a[full.radii.amax(-1) > 0], b[full.radii.amax(-1) > 0]  # where the Gaussian is drawn
                torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def ffprobe_side_data(video: Path) -> str:
    tool = shutil.which("ffprobe")
    if tool is None:
        message = "ffprobe is not installed (apt-get install ffmpeg); it reads the videos' stereo and 360 labels"
        if os.environ.get("SPATIAL_INTEROP_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run([tool, "-v", "error", "-select_streams", "v", "-show_streams", str(video)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("camera, expected", [
    ("stereo-sbs", ["side_data_type=Stereo 3D", "type=side by side"]),
    ("stereo-tb", ["side_data_type=Stereo 3D", "type=top and bottom"]),
    ("equirect", ["side_data_type=Spherical Mapping", "projection=equirectangular", "type=2D"]),
    ("vr180", ["side_data_type=Spherical Mapping", "projection=tiled equirectangular", "type=side by side"]),
])
def test_players_read_the_label_of_a_stereo_or_360_video(shell, tmp_path, camera, expected):
    """FFmpeg's reader (an independent one) finds the Spherical Video V2 boxes; the frames are unchanged by them."""
    c2w = torch.stack([looking(torch.tensor([math.sin(a), 0.0, math.cos(a)], dtype=torch.float64))
                       for a in (0.0, 0.3, 0.6)])
    path = CameraPath(c2w, torch.full((3,), 60.0, dtype=torch.float64), 64, 32, 10.0)
    rig = make_rig(camera, ipd=0.1, up=torch.tensor([0.0, -1.0, 0.0]))
    assert render_camera_path(shell, path, tmp_path / "v.mp4", rig=rig) == 3
    probed = ffprobe_side_data(tmp_path / "v.mp4")
    for line in expected:
        assert line in probed, probed
    if camera == "vr180":  # a quarter of the full panorama's width cut off each side: ffprobe says it in pixels
        assert "bound_left=" in probed and "bound_top=0" in probed
    frames = list(path_frames(shell, path, rig=rig))
    write_video(frames, tmp_path / "plain.mp4", path.fps)  # the same frames, unlabelled
    video = read_video(tmp_path / "v.mp4")
    assert video.shape == (3, *frames[0].shape)
    np.testing.assert_array_equal(video, read_video(tmp_path / "plain.mp4"))  # the label changes no picture


def test_a_flat_video_has_no_label(shell, tmp_path):
    path = CameraPath(looking(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))[None].repeat(2, 1, 1),
                      torch.full((2,), 60.0, dtype=torch.float64), 32, 32, 10.0)
    render_camera_path(shell, path, tmp_path / "flat.mp4")
    assert "SIDE_DATA" not in ffprobe_side_data(tmp_path / "flat.mp4")


def test_a_label_needs_a_container_that_carries_it(shell, tmp_path):
    path = CameraPath(looking(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))[None].repeat(2, 1, 1),
                      torch.full((2,), 60.0, dtype=torch.float64), 32, 32, 10.0)
    with pytest.raises(SpatialError, match=r"v\.mkv: stereo and 360-degree videos are labelled for players in "
                                           r"\.mp4 and \.mov files; choose one of those"):
        render_camera_path(shell, path, tmp_path / "v.mkv", rig=make_rig("equirect"))
    assert not (tmp_path / "v.mkv").exists()


def test_a_panorama_camera_projects_where_its_rays_go():
    """Cameras with CameraModel.EQUIRECTANGULAR: pixels to rays and back, points to pixels and distances."""
    from spatial.distortion import CameraModel

    W, H = 64, 32
    c2w = looking(torch.tensor([0.4, -0.2, 1.0], dtype=torch.float64), (0.5, 0.2, -1.0))
    K = torch.tensor([[[W / (2 * math.pi), 0, W / 2], [0, H / math.pi, H / 2], [0, 0, 1]]], dtype=torch.float64)
    camera = Cameras(c2w[None], K, W, H, CameraModel.EQUIRECTANGULAR)
    uv = torch.rand(1, 50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) \
        * torch.tensor([W, H * 0.9]) + torch.tensor([0, H * 0.05])
    points = camera.unproject(uv, torch.full((1, 50), 3.0, dtype=torch.float64))
    back, distance = camera.project(points[0])
    torch.testing.assert_close(back, uv)
    torch.testing.assert_close(distance, torch.full((1, 50), 3.0, dtype=torch.float64))
    origins, dirs = camera.pixel_rays(torch.tensor([[[W / 2, H / 2], [0.0, H / 2], [W / 2, 0.0]]], dtype=torch.float64))
    torch.testing.assert_close(dirs[0], torch.stack([c2w[:3, 2], -c2w[:3, 2], -c2w[:3, 1]]))  # ahead, behind, up
    torch.testing.assert_close(origins[0, 0], c2w[:3, 3])


def test_the_render_command_makes_stereo_and_360_videos(trained_run, tmp_path, capsys):
    from PIL import Image

    from spatial.cli import main
    from tests.test_export_render import run_cli

    main(["render", str(trained_run), "--camera", "vr180", "--frames", "3", "--height", "40",
          "--out", str(tmp_path / "vr.mp4")])
    said = " ".join(capsys.readouterr().out.split())  # as one line, whatever the terminal's width
    assert "at 80x40" in said and "scene units apart (1/30 of the median depth; --ipd)" in said, said
    assert "levelled to the scene's up" in said
    assert read_video(tmp_path / "vr.mp4").shape == (3, 40, 80, 3)  # two square eyes side by side
    assert "type=side by side" in ffprobe_side_data(tmp_path / "vr.mp4")
    main(["render", str(trained_run), "--camera", "equirect", "--output", "depth", "--frames", "2", "--width", "64",
          "--out", str(tmp_path / "depth")])
    frame = np.asarray(Image.open(tmp_path / "depth" / "frame_00000.png"))
    assert frame.shape == (32, 64, 3) and frame.any(-1).mean() > 0.05  # 2:1, and the scene is in it
    main(["render", str(trained_run), "--camera", "stereo-tb", "--ipd", "0.05", "--frames", "2", "--width", "48",
          "--height", "32", "--out", str(tmp_path / "tb")])
    assert "eyes 0.05 scene units apart" in " ".join(capsys.readouterr().out.split())
    assert np.asarray(Image.open(tmp_path / "tb" / "frame_00001.png")).shape == (64, 48, 3)
    code, out = run_cli("render", str(trained_run), "--camera", "stereo-sbs", "--ipd", "-1")
    assert code == 2 and "--ipd must be a distance above 0 in scene units, got -1.0" in out and "Traceback" not in out
    code, out = run_cli("render", str(trained_run), "--camera", "equirect", "--out", str(tmp_path / "p.mkv"))
    assert code == 2 and "labelled for players in .mp4 and .mov files" in out and "Traceback" not in out
