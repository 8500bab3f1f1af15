"""The unseen-space loss (spatial/nerf/unseen.py): which space no training photo sees, points drawn there, and the
step pushing the fields' density down there."""

import copy

import pytest
import torch

from spatial.cameras import Cameras
from spatial.configs.nerf import PRESETS
from spatial.distortion import CameraModel
from spatial.io import load_scene
from spatial.nerf.depth_prior import DepthPoints
from spatial.nerf.field import SpaceMap
from spatial.nerf.trainer import NerfTrainer
from spatial.nerf.unseen import (
    PHOTOS,
    POINTS,
    Sight,
    grid_to_world,
    lone_weight,
    unseen_cells,
    unseen_penalty,
    unseen_points,
)
from tests.helpers import nerf_loss_with


def _space(bounded: bool) -> SpaceMap:
    return SpaceMap(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, 3.0, 3.0]) if not bounded
                    else torch.tensor([3.0, 2.0, 1.0]), bounded=bounded)


@pytest.mark.parametrize("bounded", [False, True])
def test_grid_points_map_back_to_where_the_space_map_puts_them(bounded):
    space = _space(bounded)
    extent = 1.0 if bounded else 2.0
    q = (torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1) * extent * 0.999  # [N, 3]
    u, inside = space(grid_to_world(space, q))
    torch.testing.assert_close((u * 2 - 1) * extent, q, atol=1e-4, rtol=1e-4)
    assert bool(inside.all())


def _one_camera(model=CameraModel.PINHOLE) -> Cameras:
    """A 64x48 camera at the origin looking along +z (OpenCV: x right, y down), 90 degrees across."""
    K = torch.tensor([[[32.0, 0.0, 32.0], [0.0, 32.0, 24.0], [0.0, 0.0, 1.0]]])
    return Cameras(torch.eye(4)[None], K, torch.tensor([64]), torch.tensor([48]), model)


def _cell_of(space: SpaceMap, world: torch.Tensor, resolution: int) -> torch.Tensor:
    u, _ = space(world)  # [N, 3] in [0, 1]
    ijk = (u * resolution).long().clamp(0, resolution - 1)
    return ijk[:, 0] + ijk[:, 1] * resolution + ijk[:, 2] * resolution ** 2


def test_space_in_front_of_a_camera_is_seen_and_behind_it_is_not():
    space = SpaceMap(torch.zeros(3), torch.full((3,), 4.0), bounded=False)
    sight = Sight.of(_one_camera(), space)
    in_front, behind, beside = (torch.tensor([[0.0, 0.0, 2.0]]), torch.tensor([[0.0, 0.0, -2.0]]),
                                torch.tensor([[6.0, 0.0, 0.5]]))  # beside: 85 degrees off the axis
    # exact at a view's edge (90 degrees across: x = z): the cell around both points holds seen and unseen space
    inside_edge, outside_edge = torch.tensor([[2.1, 0.0, 2.5]]), torch.tensor([[2.9, 0.0, 2.1]])
    seen = sight.seen(torch.cat([in_front, behind, beside, inside_edge, outside_edge]))
    assert seen.tolist() == [True, False, False, True, False]
    cells = set(unseen_cells(sight, space, resolution=16).tolist())
    assert _cell_of(space, in_front, 16).item() not in cells  # wholly seen: no points drawn there
    assert _cell_of(space, inside_edge, 16).item() == _cell_of(space, outside_edge, 16).item()
    assert {_cell_of(space, p, 16).item() for p in (behind, beside, inside_edge)} <= cells
    assert 0.4 * 16 ** 3 < len(cells) < 16 ** 3  # the camera sees a quarter of all directions


def test_space_behind_the_sparse_points_a_photo_sees_is_hidden_only_where_they_cover_it():
    """A wall of points at z = 2 over the left half of the photo: behind it (beyond twice its distance) is hidden,
    in front of it is seen, and so is the far space the right half (no points: sky) looks into."""
    space = SpaceMap(torch.zeros(3), torch.full((3,), 4.0), bounded=False)
    camera = _one_camera()
    v, u = torch.meshgrid(torch.arange(0.5, 48), torch.arange(0.5, 32), indexing="ij")  # the left half's pixels
    uv = torch.stack([u, v], -1).reshape(-1, 2)
    wall = torch.cat([(uv - torch.tensor([32.0, 24.0])) / 32 * 2, torch.full((len(uv), 1), 2.0)], -1)  # [P, 3]
    points = DepthPoints(torch.zeros(len(uv), dtype=torch.int64), (v.long() * 64 + u.long()).reshape(-1),
                         wall.norm(dim=-1))
    behind_left, in_front_left, behind_right = (torch.tensor([[-4.0, 0.0, 12.0]]), torch.tensor([[-0.3, 0.0, 1.0]]),
                                                torch.tensor([[1.5, 0.0, 12.0]]))
    probes = torch.cat([behind_left, in_front_left, behind_right])
    assert Sight.of(camera, space, points).seen(probes).tolist() == [False, True, True]
    assert Sight.of(camera, space).seen(probes).tolist() == [True, True, True]
    hidden = set(unseen_cells(Sight.of(camera, space, points), space, resolution=32).tolist())
    plain = set(unseen_cells(Sight.of(camera, space), space, resolution=32).tolist())
    assert plain < hidden and _cell_of(space, behind_left, 32).item() in hidden - plain


def test_space_one_photo_alone_sees_is_not_seen_by_two():
    """Two cameras a unit apart (x = 0 and x = 1) looking along +z, 90 degrees across: at z = 3 the left one sees
    x in [-3, 3], the right one x in [-2, 4]."""
    space = SpaceMap(torch.zeros(3), torch.full((3,), 4.0), bounded=False)
    one = _one_camera()
    cam_to_world = torch.eye(4).repeat(2, 1, 1)
    cam_to_world[1, 0, 3] = 1.0
    cameras = Cameras(cam_to_world, one.K.expand(2, 3, 3), torch.tensor([64, 64]), torch.tensor([48, 48]),
                      CameraModel.PINHOLE)
    both, left_only, right_only, behind = [0.5, 0.0, 3.0], [-2.5, 0.0, 3.0], [3.5, 0.0, 3.0], [0.0, 0.0, -2.0]
    points = torch.tensor([both, left_only, right_only, behind])
    assert Sight.of(cameras, space, photos=2).seen_by(points).tolist() == [[True, True, False, False],
                                                                           [True, False, True, False]]
    assert Sight.of(cameras, space, photos=2).seen(points).tolist() == [True, False, False, False]
    assert Sight.of(cameras, space).seen(points).tolist() == [True, True, True, False]


def test_a_panorama_sees_everything():
    space = _space(False)
    assert len(unseen_cells(Sight.of(_one_camera(CameraModel.EQUIRECTANGULAR), space), space, resolution=8)) == 0


@pytest.mark.parametrize("bounded", [False, True])
def test_unseen_points_fall_in_the_cells_they_are_drawn_from(bounded):
    space, resolution = _space(bounded), 8
    cells = torch.tensor([0, 77, 511])
    points = unseen_points(cells, space, 300, torch.Generator().manual_seed(1), resolution)
    found = _cell_of(space, points, resolution)
    assert set(found.tolist()) == {0, 77, 511}


def test_the_step_adds_the_weighted_penalty_of_every_field_at_the_unseen_points(facade_path, tmp_path):
    config = copy.deepcopy(PRESETS["tiny"][1])
    config.steps, config.checkpoint_every = 2, 0
    config.losses.unseen = 1.0
    trainer = NerfTrainer(load_scene(facade_path), config, tmp_path / "run")
    assert trainer.unseen_cells is not None and trainer.unseen_cells.device == trainer.device
    batch = trainer.sample_batch()
    assert batch.unseen.shape == (POINTS, 3)
    assert torch.equal(batch.unseen_mask, (~trainer.sight.seen(batch.unseen)).float())
    assert 0 < batch.unseen_mask.mean().item() < 1  # the cells not wholly seen hold some seen space
    model, loss = trainer.model, nerf_loss_with(trainer, batch)
    with torch.no_grad():
        penalty = sum(unseen_penalty(f.density(batch.unseen), model.space, batch.unseen_mask).item()
                      for f in (model.field, *model.proposals))
    assert penalty > 0  # an untrained field has density everywhere
    assert loss(unseen=3.0) - loss(unseen=0.0) == pytest.approx(3 * penalty, rel=1e-4)


def test_training_with_the_loss_empties_unseen_space_and_keeps_the_surfaces_photos_see(facade_path, tmp_path):
    scene = load_scene(facade_path)

    def train(weight: float) -> NerfTrainer:
        config = copy.deepcopy(PRESETS["tiny"][1])
        config.steps, config.checkpoint_every, config.losses.unseen = 60, 0, weight
        trainer = NerfTrainer(scene, config, tmp_path / f"run{weight}")
        for _ in range(60):
            trainer.step()
        return trainer

    with_loss, without = train(1.0), train(0.0)
    drawn = unseen_points(with_loss.unseen_cells, with_loss.space, 2000, torch.Generator().manual_seed(3))
    unseen = drawn[~with_loss.sight.seen(drawn)]
    with torch.no_grad():
        def density(trainer: NerfTrainer, points: torch.Tensor) -> float:
            return trainer.model.field.density(points).mean().item()

        assert density(with_loss, unseen) < 0.5 * density(without, unseen)
        # the facade's sparse points: surfaces the photos see keep the density they learnt
        assert density(with_loss, scene.points) > 0.5 * density(without, scene.points)


def test_without_the_loss_no_unseen_points_are_drawn(facade_path, tmp_path):
    config = copy.deepcopy(PRESETS["tiny"][1])
    config.steps, config.checkpoint_every = 2, 0
    trainer = NerfTrainer(load_scene(facade_path), config, tmp_path / "run")
    assert trainer.unseen_cells is None and trainer.sample_batch().unseen is None


def test_the_step_adds_each_rays_weight_where_fewer_than_two_photos_see(facade_path, tmp_path):
    config = copy.deepcopy(PRESETS["tiny"][1])
    config.steps, config.checkpoint_every, config.losses.lone = 2, 0, 1.0
    trainer = NerfTrainer(load_scene(facade_path), config, tmp_path / "run")
    assert trainer.sight.photos == PHOTOS == 2 and trainer.unseen_cells is None  # no points drawn for it
    batch = trainer.sample_batch()
    state = trainer.generator.get_state()
    loss = nerf_loss_with(trainer, batch)
    trainer.generator.set_state(state)  # the same samples along the rays as the step's
    with torch.no_grad():
        out = trainer.model(batch.origins, batch.dirs, batch.image_ids, batch.background, 5, trainer.generator)
        t = out.spacing.to_t((out.edges[:, 1:] + out.edges[:, :-1]) / 2)  # [R, S]
        midpoints = batch.origins[:, None] + batch.dirs[:, None] * t[..., None]  # [R, S, 3]
        photos = trainer.sight.seen_by(midpoints.reshape(-1, 3)).sum(0).reshape(t.shape)  # [R, S]
        expected = (out.weights * (photos < 2)).sum(-1).mean().item()
        assert 0 < (photos < 2).float().mean().item() < 1  # samples both sides of the rule
        assert lone_weight(trainer.sight, batch.origins, batch.dirs, out.edges, out.weights,
                           out.spacing).item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0  # an untrained field has weight everywhere
    assert loss(lone=3.0) - loss(lone=0.0) == pytest.approx(3 * expected, rel=1e-3)

