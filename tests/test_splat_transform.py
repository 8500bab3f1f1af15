"""Whole-model transforms: a moved model seen by a moved camera looks exactly like the original."""

import math

import pytest
import torch

from spatial.cameras import intrinsics_from_fov, look_at, rigid_inverse
from spatial.render import RenderOptions
from spatial.render.sh import sh_basis
from spatial.splats.model import render_splats
from spatial.splats.transform import merge_splats, sh_rotation, transform_splats
from spatial.transforms import apply_to_cam_to_world, make_transform, quat_to_rotmat
from tests.helpers import random_splat_params as random_splats


def rotation(axis, degrees):
    axis = torch.nn.functional.normalize(torch.tensor(axis, dtype=torch.float64), dim=0)
    half = math.radians(degrees) / 2
    return quat_to_rotmat(torch.cat([torch.tensor([math.cos(half)], dtype=torch.float64), math.sin(half) * axis]))


def test_sh_rotation_turns_the_colour_function():
    R = rotation([0.3, -0.5, 0.8], 70)
    dirs = torch.nn.functional.normalize(torch.randn(100, 3, dtype=torch.float64), dim=-1)
    coeffs = torch.randn(16, dtype=torch.float64)
    M = sh_rotation(R, 3)
    turned = torch.cat([coeffs[:1], M @ coeffs[1:]])
    # the turned function at R d equals the original at d
    torch.testing.assert_close(sh_basis(dirs @ R.T, 3) @ turned, sh_basis(dirs, 3) @ coeffs, atol=1e-10, rtol=0)


def test_a_transformed_model_renders_like_the_original_from_the_moved_camera():
    splats = random_splats()
    T = make_transform(rotation([1, 2, 0.5], 40).float(), torch.tensor([0.3, -0.2, 1.0]), 1.7)
    moved = transform_splats(splats, T)
    eye = torch.tensor([[0.0, -3.0, 1.0]])
    c2w = look_at(eye, torch.zeros(1, 3), torch.tensor([0.0, 0.0, 1.0]))
    K = intrinsics_from_fov(50, 64, 48)[None]
    options = RenderOptions(backend="torch")
    before = render_splats(splats, rigid_inverse(c2w), K, 64, 48, 3, options=options)
    c2w_moved = apply_to_cam_to_world(T, c2w)
    after = render_splats(moved, rigid_inverse(c2w_moved), K, 64, 48, 3, options=options)
    assert before.alpha.mean() > 0.05
    torch.testing.assert_close(after.rgb, before.rgb, atol=2e-4, rtol=0)
    torch.testing.assert_close(after.depth, before.depth * 1.7, atol=2e-3, rtol=1e-3)


def test_mirroring_and_uneven_scaling_are_refused():
    with pytest.raises(ValueError, match="mirrors"):
        transform_splats(random_splats(10), torch.diag(torch.tensor([-1.0, 1, 1, 1])))
    with pytest.raises(ValueError, match="unevenly"):
        transform_splats(random_splats(10), torch.diag(torch.tensor([2.0, 1, 1, 1])))


def test_merge_pads_sh_degrees():
    merged = merge_splats([random_splats(5, sh_degree=1), random_splats(7, sh_degree=3)])
    assert merged["means"].shape == (12, 3) and merged["shN"].shape == (12, 15, 3)
    assert (merged["shN"][:5, 3:] == 0).all()
