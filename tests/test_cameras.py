"""Cameras: projection conventions, distortion against pycolmap, round trips, rays, rescaling."""

import numpy as np
import pycolmap
import pytest
import torch

from spatial.cameras import Cameras, intrinsics_from_fov, look_at, pixel_centers
from spatial.distortion import CameraModel, distort, undistort

# Realistic coefficients for each model, in our 4-coefficient layout.
MODELS = {
    CameraModel.PINHOLE: ("PINHOLE", [0.0, 0.0, 0.0, 0.0]),
    CameraModel.SIMPLE_RADIAL: ("SIMPLE_RADIAL", [-0.12, 0.0, 0.0, 0.0]),
    CameraModel.OPENCV: ("OPENCV", [-0.21, 0.07, 0.0012, -0.0008]),
    CameraModel.OPENCV_FISHEYE: ("OPENCV_FISHEYE", [0.05, -0.01, 0.004, -0.001]),
}


def random_cameras(model: CameraModel, count: int = 3, seed: int = 0) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    eye = torch.randn(count, 3, generator=g) * 2 + torch.tensor([0.0, 0.0, 4.0])
    c2w = look_at(eye, torch.zeros(count, 3), torch.tensor([0.0, 0.0, 1.0]))
    K = torch.tensor([[400.0, 0, 330], [0, 410.0, 235], [0, 0, 1]]).expand(count, 3, 3).clone()
    if model == CameraModel.SIMPLE_RADIAL:
        K[:, 1, 1] = K[:, 0, 0]
    dist = torch.tensor(MODELS[model][1]).expand(count, 4).clone()
    return Cameras(c2w, K, 640, 480, model, dist)


def pycolmap_camera(cams: Cameras, i: int) -> pycolmap.Camera:
    name, _ = MODELS[cams.model]
    K, d = cams.K[i].double(), cams.dist[i].double().tolist()
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    params = {
        "PINHOLE": [fx, fy, cx, cy],
        "SIMPLE_RADIAL": [fx, cx, cy, d[0]],
        "OPENCV": [fx, fy, cx, cy, *d],
        "OPENCV_FISHEYE": [fx, fy, cx, cy, *d],
    }[name]
    return pycolmap.Camera(model=name, width=int(cams.width[i]), height=int(cams.height[i]), params=params)


def test_opencv_axes():
    """+z is forward, +x lands right of centre, +y below it."""
    cams = Cameras(torch.eye(4)[None], intrinsics_from_fov(90, 200, 100)[None], 200, 100)
    uv, z = cams.project(torch.tensor([[0.0, 0, 2], [1.0, 0, 2], [0, 1.0, 2]]))
    assert torch.allclose(uv[0, 0], torch.tensor([100.0, 50.0]))
    assert uv[0, 1, 0] > 100 and torch.isclose(uv[0, 1, 1], torch.tensor(50.0))
    assert uv[0, 2, 1] > 50 and torch.isclose(uv[0, 2, 0], torch.tensor(100.0))
    assert torch.allclose(z, torch.tensor([[2.0, 2.0, 2.0]]))


def test_look_at_points_the_camera_and_keeps_up_up():
    eye = torch.tensor([[3.0, 0.0, 1.0]])
    c2w = look_at(eye, torch.zeros(1, 3), torch.tensor([0.0, 0.0, 1.0]))
    R = c2w[0, :3, :3]
    assert torch.allclose(R @ R.T, torch.eye(3), atol=1e-6) and torch.isclose(torch.det(R), torch.tensor(1.0))
    assert torch.allclose(R[:, 2], torch.nn.functional.normalize(-eye[0], dim=0), atol=1e-6)
    assert R[2, 1] < 0  # camera +y (down) points to world -z
    cams = Cameras(c2w, intrinsics_from_fov(60, 64, 64)[None], 64, 64)
    uv, _ = cams.project(torch.tensor([[0.0, 0, 0], [0.0, 0, 0.5]]))
    assert torch.allclose(uv[0, 0], torch.tensor([32.0, 32.0]), atol=1e-4)
    assert uv[0, 1, 1] < 32  # a point above the target appears higher in the image


@pytest.mark.parametrize("model", list(MODELS))
def test_projection_matches_pycolmap(model):
    cams = random_cameras(model)
    g = torch.Generator().manual_seed(1)
    points = torch.randn(200, 3, generator=g) * 0.7
    uv, z = cams.project(points)
    for i in range(len(cams)):
        w2c = cams.world_to_cam[i].double().numpy()
        p_cam = points.double().numpy() @ w2c[:3, :3].T + w2c[:3, 3]
        xy = p_cam[:, :2] / p_cam[:, 2:]
        ok = (p_cam[:, 2] > 0.1) & (np.abs(xy).max(-1) < 1.2)  # inside the lens's valid field of view
        reference = pycolmap_camera(cams, i).img_from_cam(p_cam[ok])
        np.testing.assert_allclose(uv[i][torch.from_numpy(ok)].numpy(), reference, atol=2e-3)
        np.testing.assert_allclose(z[i].numpy(), p_cam[:, 2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model", list(MODELS))
def test_undistort_matches_pycolmap(model):
    cams = random_cameras(model, count=1)
    uv = pixel_centers(640, 480)[::37, ::41].reshape(1, -1, 2).double()
    ours = undistort(
        (uv[0] - cams.K[0, :2, 2].double()) / torch.stack([cams.fx[0], cams.fy[0]]).double(),
        cams.dist[0].double(), model,
    )
    reference = pycolmap_camera(cams, 0).cam_from_img(uv[0].numpy())
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-6)


@pytest.mark.parametrize("model", list(MODELS))
def test_distort_undistort_round_trip(model):
    xy = torch.stack(torch.meshgrid(torch.linspace(-0.6, 0.6, 25), torch.linspace(-0.45, 0.45, 19),
                                    indexing="ij"), -1).reshape(-1, 2).double()
    dist = torch.tensor(MODELS[model][1], dtype=torch.float64)
    back = undistort(distort(xy, dist, model), dist, model)
    assert torch.allclose(back, xy, atol=1e-9)


@pytest.mark.parametrize("model", list(MODELS))
def test_project_unproject_round_trip(model):
    cams = random_cameras(model)
    points = torch.randn(100, 3, generator=torch.Generator().manual_seed(2)) * 0.5
    uv, z = cams.project(points)
    back = cams.unproject(uv, z)
    assert torch.allclose(back, points.expand_as(back), atol=1e-4)


@pytest.mark.parametrize("model", [CameraModel.SIMPLE_RADIAL, CameraModel.OPENCV])
def test_cameras_with_zero_coefficients_simplify_to_pinholes_with_the_same_rays(model):
    cams = random_cameras(model)
    assert cams.simplified() is cams  # a lens with something to undo keeps its model
    zero = Cameras(cams.cam_to_world, cams.K, cams.width, cams.height, model, torch.zeros(len(cams), 4))
    fisheye = Cameras(cams.cam_to_world, cams.K, cams.width, cams.height, CameraModel.OPENCV_FISHEYE,
                      torch.zeros(len(cams), 4))
    assert fisheye.simplified() is fisheye  # equidistant without coefficients: no pinhole
    pinhole = zero.simplified()
    assert pinhole.model == CameraModel.PINHOLE
    uv = pixel_centers(640, 480)[::53, ::61].reshape(1, -1, 2).expand(len(cams), -1, -1)
    for a, b in zip(zero.pixel_rays(uv), pinhole.pixel_rays(uv)):
        assert torch.allclose(a, b, atol=1e-6)


def test_rays_pass_through_projected_points():
    cams = random_cameras(CameraModel.OPENCV, count=2)
    o, d = cams.rays(1)  # [H, W, 3]
    assert o.shape == (480, 640, 3) and torch.allclose(torch.linalg.norm(d, dim=-1), torch.ones(480, 640))
    point = o[123, 456] + 2.5 * d[123, 456]
    uv, _ = cams[1].project(point[None])
    assert torch.allclose(uv[0, 0], torch.tensor([456.5, 123.5]), atol=1e-3)


def test_resized_and_downscaled_keep_points_on_the_same_relative_pixel():
    cams = random_cameras(CameraModel.OPENCV, count=1)
    small = cams.downscaled(4)
    assert (int(small.width[0]), int(small.height[0])) == (160, 120)
    p = torch.tensor([[0.1, -0.2, 0.3]])
    uv, _ = cams.project(p)
    uv_small, _ = small.project(p)
    assert torch.allclose(uv_small, uv / 4, atol=1e-4)
    odd = cams.resized(333, 250)
    assert torch.allclose(odd.project(p)[0], uv * torch.tensor([333 / 640, 250 / 480]), atol=1e-4)


def test_indexing_and_cat():
    a, b = random_cameras(CameraModel.PINHOLE, 2), random_cameras(CameraModel.OPENCV, 3, seed=5)
    both = Cameras.cat([a, b])
    assert len(both) == 5 and both.model == CameraModel.OPENCV
    assert torch.equal(both[3].cam_to_world, b[1].cam_to_world)
    assert torch.equal(both[[0, 4]].K, torch.stack([a.K[0], b.K[2]]))
    with pytest.raises(ValueError, match="fisheye"):
        Cameras.cat([a, random_cameras(CameraModel.OPENCV_FISHEYE, 1)])
