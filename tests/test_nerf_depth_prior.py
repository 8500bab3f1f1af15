"""The sparse points as the NeRF's depth prior: which points a photo sees, the line-of-sight loss, and the rays a
training step draws at them."""

import copy
import dataclasses
import shutil

import numpy as np
import pytest
import torch

from spatial import SpatialError, load_scene
from spatial.cameras import Cameras
from spatial.configs.nerf import PRESETS
from spatial.io.colmap import find_model, load_colmap, point_views_beside, read_model, write_model
from spatial.nerf.depth_prior import DepthPoints, free_distances, line_of_sight_loss, visible_points, weight_before
from spatial.nerf.sampling import Spacing
from spatial.nerf.trainer import NerfTrainer
from tests.helpers import nerf_loss_with


def looking_down_z(width=64, height=48, focal=50.0) -> Cameras:
    K = torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    return Cameras(torch.eye(4)[None], K[None], width, height)


def test_a_photo_sees_the_nearer_of_two_points_on_one_pixel_and_nothing_behind_or_beside_it():
    points = torch.tensor([[0.0, 0.0, 2.0],  # seen, centre pixel
                           [0.01, 0.0, 5.0],  # behind the first, within a pixel of it: hidden
                           [1.6, 0.0, 4.0],  # 20 px right of the centre, two cells away: seen
                           [0.0, 0.0, -3.0],  # behind the camera
                           [10.0, 0.0, 1.0]])  # outside the image
    found = visible_points(looking_down_z(), points)
    assert found.image.tolist() == [0, 0]
    assert found.pixel.tolist() == [24 * 64 + 32, 24 * 64 + 52]
    torch.testing.assert_close(found.distance, torch.stack([points[0].norm(), points[2].norm()]))


def test_no_points_means_no_prior():
    assert visible_points(looking_down_z(), torch.zeros(0, 3)) is None


def test_the_line_of_sight_loss_is_zero_at_the_surface_and_one_for_a_floater_or_nothing():
    edges = torch.linspace(0, 1, 11)[None].expand(4, -1)  # [4, 11]: ten intervals
    at_surface, floater, empty, masked = (torch.zeros(10) for _ in range(4))
    at_surface[5] = 1.0  # the interval [0.5, 0.6] around the point
    floater[1] = 1.0  # all the weight well in front of it
    masked[1] = 1.0
    weights = torch.stack([at_surface, floater, empty, masked])
    lo, hi = torch.full((4,), 0.45), torch.full((4,), 0.65)
    per_ray = [line_of_sight_loss(edges[i:i + 1], weights[i:i + 1], lo[:1], hi[:1], torch.ones(1)).item()
               for i in range(4)]
    assert per_ray[:3] == [0.0, 1.0, 1.0]  # all the weight in front of the point, or none at all
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])  # the last ray sees no point: it adds nothing
    assert line_of_sight_loss(edges, weights, lo, hi, mask).item() == pytest.approx(2 / 3)


def test_the_weight_before_a_distance_counts_the_intervals_whose_middles_are_nearer():
    edges = torch.linspace(0, 1, 11)[None].expand(2, -1)  # [2, 11]: ten intervals, middles 0.05 ... 0.95
    weights = torch.arange(20.0).reshape(2, 10) / 100
    before = weight_before(edges, weights, torch.tensor([0.35, 0.0]))
    torch.testing.assert_close(before, torch.tensor([0.00 + 0.01 + 0.02, 0.0]))


def test_a_photos_free_distance_is_half_its_nearest_points_and_none_without_enough_of_them():
    distance = torch.cat([torch.arange(1.0, 21.0), torch.full((5,), 3.0)])  # photo 0: 20 points, photo 1: 5
    image = torch.cat([torch.zeros(20, dtype=torch.long), torch.ones(5, dtype=torch.long)])
    free = free_distances(DepthPoints(image, torch.zeros_like(image), distance), 3)
    torch.testing.assert_close(free, torch.tensor([0.5 * 1.19, 0.0, 0.0]))  # 1.19: the 1% quantile of 1 ... 20


def test_the_free_space_loss_adds_each_rays_weight_nearer_than_its_photos_free_distance(facade_path, tmp_path):
    scene = load_scene(facade_path)
    config = copy.deepcopy(PRESETS["tiny"][1])
    config.steps, config.checkpoint_every = 2, 0
    config.losses.free = 1.0
    trainer = NerfTrainer(scene, config, tmp_path / "run")
    assert trainer.depth_points is None  # only the photos' free distances, no rays drawn at the points
    views = point_views_beside(scene.root, scene.image_names, scene.points)  # the tracks, as the trainer reads them
    training = dataclasses.replace(scene, point_views=views).subset(scene.train_ids)
    found = visible_points(training.cameras, training.points, training.point_views)
    nearest = torch.stack([found.distance[found.image == i].min() for i in range(len(scene.train_ids))])
    assert bool((trainer.free_distance > 0).all()) and bool((trainer.free_distance < nearest).all())
    batch = trainer.sample_batch()
    position = (batch.image_ids[:, None] == trainer.train_ids[None]).float().argmax(-1)  # [R] training image
    assert torch.equal(batch.free, trainer.free_distance[position])

    model, state = trainer.model, trainer.generator.get_state()
    loss = nerf_loss_with(trainer, batch)
    trainer.generator.set_state(state)
    out = model(batch.origins, batch.dirs, batch.image_ids, batch.background, 5, trainer.generator)
    spacing = model.near_far(batch.origins, batch.dirs)[2]
    near = weight_before(out.edges, out.weights, spacing.to_s(batch.free[:, None])[:, 0]).mean().item()
    assert near > 0  # an untrained field has weight everywhere
    assert loss(free=2.0) - loss(free=0.0) == pytest.approx(2 * near, rel=1e-4)


@pytest.mark.parametrize("radius", [None, 2.0])
def test_spacing_to_s_inverts_to_t(radius):
    spacing = Spacing(torch.tensor([0.1, 0.5]), torch.tensor([20.0, 50.0]), radius)
    s = torch.rand(2, 7)
    torch.testing.assert_close(spacing.to_s(spacing.to_t(s)), s, atol=1e-5, rtol=0)


def test_every_fourth_training_ray_ends_at_a_sparse_point_and_the_step_trains_on_it(facade_path, tmp_path):
    scene = load_scene(facade_path)
    assert scene.points.shape[0] > 0
    config = copy.deepcopy(PRESETS["tiny"][1])
    config.steps, config.checkpoint_every = 2, 0
    config.losses.depth = 0.05
    trainer = NerfTrainer(scene, config, tmp_path / "run")
    batch = trainer.sample_batch()
    R = batch.depth.shape[0]
    with_depth = torch.zeros(R, dtype=torch.bool)
    with_depth[::4] = True
    assert bool((batch.depth[with_depth] > 0).all()) and bool((batch.depth[~with_depth] == 0).all())
    ends = batch.origins[with_depth] + batch.dirs[with_depth] * batch.depth[with_depth, None]  # [D, 3] world
    # each ray passes through its pixel's centre, within half a pixel of its point: it ends next to that point
    nearest = torch.cdist(ends, scene.points).amin(-1)
    pixel_size = batch.depth[with_depth] / trainer.scene.cameras.fx[batch.image_ids[with_depth]]
    assert bool((nearest < pixel_size).all())
    first = trainer.step()
    assert torch.isfinite(first["loss"])
    trainer.train(1)


def test_without_the_loss_no_ray_is_drawn_at_the_points(facade_path, tmp_path):
    config = copy.deepcopy(PRESETS["tiny"][1])
    config.steps, config.checkpoint_every = 2, 0
    trainer = NerfTrainer(load_scene(facade_path), config, tmp_path / "run")
    assert trainer.depth_points is None and trainer.sample_batch().depth is None


@pytest.mark.parametrize("change, message", [
    ({"depth_share": 0.0}, "--losses.depth-share must be above 0 and at most 1, got 0.0"),
    ({"depth_share": 1.5}, "--losses.depth-share must be above 0 and at most 1, got 1.5"),
    ({"depth": -0.1}, "--losses.depth must be 0 or more, got -0.1"),
    ({"free": -1.0}, "--losses.free must be 0 or more, got -1.0"),
    ({"unseen": -0.5}, "--losses.unseen must be 0 or more, got -0.5"),
    ({"distortion": float("nan")}, "--losses.distortion must be 0 or more, got nan"),
])
def test_bad_loss_settings_are_refused_by_name(change, message, facade_path, tmp_path):
    config = copy.deepcopy(PRESETS["tiny"][1])
    for key, value in change.items():
        setattr(config.losses, key, value)
    with pytest.raises(SpatialError) as error:
        NerfTrainer(load_scene(facade_path), config, tmp_path / "run")
    assert str(error.value) == message


def test_the_tracks_say_which_photo_saw_which_point_and_the_prior_keeps_to_them(facade_path, tmp_path):
    shutil.copytree(facade_path, tmp_path / "scene")  # a COLMAP model (sparse/0) beside a transforms.json
    model_dir = find_model(tmp_path / "scene")[0]
    model = read_model(model_dir)
    first, second = sorted(model.images.values(), key=lambda im: im.name)[:2]
    P = len(model.points.ids)
    # every point matched in the first two photos (twice in the second: one pair per photo and point)
    model.points.tracks = [np.array([[first.id, 0], [second.id, 3], [second.id, 4]], np.int32)] * P
    write_model(model, model_dir)

    scene = load_colmap(tmp_path / "scene")
    expected = torch.tensor([[c, p] for c in (0, 1) for p in range(P)])
    assert torch.equal(scene.point_views, expected)
    assert torch.equal(scene.subset([1, 2]).point_views, torch.tensor([[0, p] for p in range(P)]))
    found = visible_points(scene.cameras, scene.points, scene.point_views)
    assert set(found.image.tolist()) == {0, 1}  # the other photos see none: the tracks say so

    beside = load_scene(tmp_path / "scene")  # read as the transforms.json, which has no tracks
    assert beside.source_format != "colmap" and beside.point_views is None
    names = [beside.image_names.index(image.name) for image in (first, second)]
    views = point_views_beside(beside.root, beside.image_names, beside.points)
    assert torch.equal(views, torch.tensor(sorted([c, p] for c in names for p in range(P))))
    moved = beside.points + 1.0  # not the model's points: its tracks are not theirs
    assert point_views_beside(beside.root, beside.image_names, moved) is None
