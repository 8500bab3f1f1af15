"""Objects from splats (spatial/splats/objects.py) and selecting them with a click (World.select_object, segment).

On trained built-in scenes against their true instance masks: scripts/bench_objects.py (scripts/results/objects.txt).
The test-size scene (64x48, 300 steps) is too coarse for that: its objects are a few hundred blurred Gaussians."""

from __future__ import annotations

import math

import pytest
import torch

from spatial.splats.objects import segment
from spatial_viewer.world import World


def surface_world(seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A floor (z = 0, 4 x 4) with a box and a ball standing on it, a floater beside the box and faint Gaussians
    in the air, as splat parameters; with the true object of each Gaussian (0 floor, 1 box, 2 ball)."""
    g = torch.Generator().manual_seed(seed)
    floor = torch.cat([torch.rand(6000, 2, generator=g) * 4 - 2, torch.zeros(6000, 1)], 1)
    # a box 0.6 wide and 0.8 tall standing at (-0.8, 0): its four sides and top
    u = torch.rand(3000, 2, generator=g)
    side = torch.randint(0, 5, (3000,), generator=g)
    box = torch.stack([-0.8 + 0.6 * (u[:, 0] - 0.5), 0.6 * (u[:, 1] - 0.5), 0.8 * u[:, 1]], 1)
    box[side == 0] = torch.stack([torch.full_like(u[:, 0], -1.1), 0.6 * (u[:, 0] - 0.5), 0.8 * u[:, 1]], 1)[side == 0]
    box[side == 1] = torch.stack([torch.full_like(u[:, 0], -0.5), 0.6 * (u[:, 0] - 0.5), 0.8 * u[:, 1]], 1)[side == 1]
    box[side == 2] = torch.stack([-0.8 + 0.6 * (u[:, 0] - 0.5), torch.full_like(u[:, 0], -0.3), 0.8 * u[:, 1]],
                                 1)[side == 2]
    box[side == 3] = torch.stack([-0.8 + 0.6 * (u[:, 0] - 0.5), torch.full_like(u[:, 0], 0.3), 0.8 * u[:, 1]],
                                 1)[side == 3]
    box[side == 4] = torch.stack([-0.8 + 0.6 * (u[:, 0] - 0.5), 0.6 * (u[:, 1] - 0.5), torch.full_like(u[:, 0], 0.8)],
                                 1)[side == 4]
    # a ball of radius 0.4 resting on the floor at (0.9, 0.5)
    d = torch.nn.functional.normalize(torch.randn(3000, 3, generator=g), dim=-1)
    ball = torch.tensor([0.9, 0.5, 0.4]) + 0.4 * d
    floater = torch.tensor([-0.8, -0.45, 1.2]) + 0.01 * torch.randn(5, 3, generator=g)  # near the box, off it
    shell = torch.nn.functional.normalize(torch.randn(50, 3, generator=g), dim=-1)
    faint = torch.tensor([0.9, 0.5, 0.4]) + 0.45 * shell
    means = torch.cat([floor, box, ball, floater, faint])
    truth = torch.cat([torch.zeros(6000), torch.ones(3000), torch.full((3000,), 2), torch.ones(5),
                       torch.full((50,), 2)])
    N = len(means)
    opacities = torch.full((N,), 3.0)
    opacities[-50:] = -3.0  # the faint ones: opacity 0.05
    params = {"means": means, "quats": torch.tensor([1.0, 0, 0, 0]).expand(N, 4).clone(),
              "scales": torch.full((N, 3), math.log(0.01)), "opacities": opacities,
              "sh0": torch.zeros(N, 1, 3), "shN": torch.zeros(N, 0, 3)}
    return params, truth.long()


def test_the_floor_the_box_and_the_ball_are_three_objects():
    params, truth = surface_world()
    labels = segment(params)
    assert sorted(torch.unique(labels).tolist()) == [0, 1, 2]  # the floater and the faint ones joined an object
    # the floor is the plane (object 0); the box and the ball each one object; what stands on the floor within the
    # plane's distance (3 spacings, about 0.05 here) of it goes with the floor
    on_floor = params["means"][:, 2] < 0.1
    assert (labels[truth == 0] == 0).all()
    for thing in (1, 2):
        mine = (truth == thing) & ~on_floor
        assert len(torch.unique(labels[mine])) == 1 and int(labels[mine][0]) != 0
    assert int(labels[truth == 1][~on_floor[truth == 1]][0]) != int(labels[truth == 2][~on_floor[truth == 2]][0])
    # the floater beside the box is the box's; the faint shell around the ball is the ball's
    assert (labels[12000:12005] == int(labels[(truth == 1) & ~on_floor][0])).all()
    high = params["means"][-50:, 2] > 0.2  # the low ones are nearer the floor than the ball, and go with it
    assert high.sum() > 30 and (labels[-50:][high] == int(labels[(truth == 2) & ~on_floor][0])).all()


def test_the_objects_do_not_depend_on_the_units_or_the_order():
    params, _ = surface_world()
    labels = segment(params)
    scaled = {**params, "means": params["means"] * 100 + torch.tensor([5.0, -3.0, 2.0])}  # centimetres, moved
    assert torch.equal(segment(scaled), labels)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))
    shuffled = segment({k: v[order] for k, v in params.items()})
    # the same partition (ids may be given in another order only if two pieces had the same size)
    pairs = set(zip(labels[order].tolist(), shuffled.tolist()))
    assert len(pairs) == len(torch.unique(labels))


def test_too_few_opaque_gaussians_are_no_object():
    params, _ = surface_world()
    few = {k: v[:3] for k, v in params.items()}
    assert segment(few).tolist() == [-1, -1, -1]


def test_a_click_selects_the_whole_object_and_undo_takes_it_back():
    params, truth = surface_world()
    world = World()
    world.add_layer("world", params)
    camera = ball_camera()
    count = world.select_object(camera, (80.5, 60.5))  # the ball is in the middle of the picture
    chosen = world.selection["world"]
    ball = (truth == 2) & (params["means"][:, 2] >= 0.1)  # above the floor's band (see above)
    assert chosen[ball].all() and not chosen[truth == 1].any() and not chosen[params["means"][:, 2] < 0.0001].any()
    assert count == int(chosen.sum())
    world.select_object(camera, (80.5, 2.5), mode="add")  # above the ball: nothing there, nothing added
    assert torch.equal(world.selection["world"], chosen)
    world.undo()
    world.undo()
    assert world.selected_count() == 0
    assert world.history()[-1][0] == "select object (add)"


def test_the_gaussians_around_the_click_decide_its_object(monkeypatch):
    """A stray Gaussian of the box nearest the clicked point on the ball does not make the click select the box."""
    params, truth = surface_world()
    world = World()
    world.add_layer("world", params)
    camera = ball_camera()
    pick = world.pick(camera, (80.5, 60.5))
    labels = world.segment()["world"].clone()
    ball, box = int(labels[pick.index]), int(labels[truth == 1][0])
    labels[pick.index] = box  # the one nearest the surface point, now the box's
    monkeypatch.setattr(world, "segment", lambda config=None: {"world": labels})
    world.select_object(camera, (80.5, 60.5))
    assert torch.equal(world.selection["world"], labels == ball)


def test_the_objects_are_found_again_when_the_world_changes():
    params, truth = surface_world()
    world = World()
    world.add_layer("world", params)
    first = world.segment()
    assert world.segment() is first  # one segmentation per state of the layers
    world.select_box(torch.tensor([0.4, 0.0, 0.05]), torch.tensor([1.4, 1.0, 1.0]))  # the ball (above the floor)
    world.delete_selected()
    again = world.segment()["world"]
    assert again is not first["world"] and len(again) == world.layer("world").count
    assert len(torch.unique(again)) == 2  # the floor and the box


def ball_camera():
    from spatial.cameras import Cameras, intrinsics_from_fov, look_at

    eye = torch.tensor([[0.9, -3.0, 1.5]], dtype=torch.float64)
    c2w = look_at(eye, torch.tensor([[0.9, 0.5, 0.4]], dtype=torch.float64),
                  torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).float()
    return Cameras(c2w, intrinsics_from_fov(50.0, 160, 120)[None], 160, 120)


def test_splitting_into_objects_makes_a_layer_of_each_and_undo_joins_them(tmp_path):
    params, truth = surface_world()
    world = World()
    world.add_layer("world", params)
    layers = world.split_objects()
    assert [l.name for l in world.layers] == ["object-0", "object-1", "object-2"] == [l.name for l in layers]
    assert sum(l.count for l in layers) == len(truth)
    floor = world.layer("object-0").params["means"]
    assert len(floor) >= 6000 and float(floor[:, 2].abs().max()) < 0.1  # the plane first
    world.undo()
    assert [l.name for l in world.layers] == ["world"] and world.layer("world").count == len(truth)


def test_the_viewer_s_object_tool_selects_what_is_clicked(tmp_path):
    from spatial_viewer.app import ViewerApp
    from tests.helpers import free_port

    params, truth = surface_world()
    world = World()
    world.add_layer("world", params)
    app = ViewerApp(world, out=tmp_path / "edited.ply")
    app.start("127.0.0.1", free_port())
    try:
        app.tools.use("select object")
        app.tools.click(ball_camera(), (80.5, 60.5))
        chosen = world.selection["world"]
        ball = (truth == 2) & (params["means"][:, 2] >= 0.1)
        assert chosen[ball].all() and not chosen[truth == 1].any()
        assert world.history()[-1] == ("select object", True)
    finally:
        app.stop()


def test_export_writes_one_object_and_lists_them_for_a_wrong_id(tmp_path, capsys):
    from spatial.cli import main
    from spatial.formats import load_splats, save_splats

    params, truth = surface_world()
    save_splats(params, tmp_path / "world.ply")
    main(["export", "ply", str(tmp_path / "world.ply"), "--object", "0", "--out", str(tmp_path / "floor.ply")])
    floor = load_splats(tmp_path / "floor.ply")["means"]
    assert len(floor) >= 6000 and float(floor[:, 2].abs().max()) < 0.1
    with pytest.raises(SystemExit):
        main(["export", "ply", str(tmp_path / "world.ply"), "--object", "7", "--out", str(tmp_path / "x.ply")])
    said = " ".join(capsys.readouterr().err.split())
    assert "world.ply: no object 7; its objects are 0 (" in said and "2 (" in said and "3 (" not in said, said


def test_a_small_thing_in_a_big_world_is_still_an_object():
    """800 Gaussians of a ball beside a floor of 300,000: under 0.5% of the world, but more than `min_count`."""
    g = torch.Generator().manual_seed(2)
    floor = torch.cat([torch.rand(300_000, 2, generator=g) * 20 - 10, torch.zeros(300_000, 1)], 1)
    ball = torch.tensor([0.0, 0.0, 0.5]) + 0.4 * torch.nn.functional.normalize(torch.randn(800, 3, generator=g), dim=-1)
    means = torch.cat([floor, ball])
    labels = segment({"means": means, "opacities": torch.full((len(means),), 3.0)})
    high = means[:, 2] > 0.2
    assert len(torch.unique(labels)) == 2 and len(torch.unique(labels[high])) == 1 and int(labels[high][0]) == 1


def uneven_world(seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Up is -y. Ground Gaussians lying flat (facing up) with litter of any orientation on them, a trunk standing on
    the ground (a cylinder whose flat Gaussians face outwards) with its cut top facing up, and a bush behind it, of
    Gaussians of any orientation; with the truth (0 ground and litter, 1 trunk and top, 2 bush)."""
    from spatial.transforms import rotmat_to_quat

    g = torch.Generator().manual_seed(seed)
    ground = torch.stack([torch.rand(8000, generator=g) * 4 - 2, torch.zeros(8000),
                          torch.rand(8000, generator=g) * 4 - 2], 1)
    ground_axes = torch.eye(3).expand(8000, 3, 3)  # smallest scale along y: facing up
    litter = ground[:600] + torch.tensor([0.0, -0.01, 0.0])
    litter_axes = torch.linalg.qr(torch.randn(600, 3, 3, generator=g))[0]
    angle = torch.rand(5000, generator=g) * 2 * math.pi
    height = torch.rand(5000, generator=g) * 1.5
    trunk = torch.stack([0.3 * angle.cos(), -height, 0.3 * angle.sin()], 1)
    radial = torch.stack([angle.cos(), torch.zeros(5000), angle.sin()], 1)
    tangent = torch.stack([-angle.sin(), torch.zeros(5000), angle.cos()], 1)
    trunk_axes = torch.stack([tangent, torch.tensor([0.0, 1.0, 0.0]).expand(5000, 3), radial], 2)  # smallest: radial
    r, t = 0.3 * torch.rand(800, generator=g).sqrt(), torch.rand(800, generator=g) * 2 * math.pi
    top = torch.stack([r * t.cos(), torch.full((800,), -1.5), r * t.sin()], 1)
    direction = torch.nn.functional.normalize(torch.randn(1500, 3, generator=g), dim=-1)
    bush = torch.tensor([1.2, -0.25, 1.2]) + 0.25 * direction * torch.rand(1500, 1, generator=g)
    bush_axes = torch.linalg.qr(torch.randn(1500, 3, 3, generator=g))[0]
    means = torch.cat([ground, litter, trunk, top, bush])
    axes = torch.cat([ground_axes, litter_axes, trunk_axes, ground_axes[:800], bush_axes])
    flat = torch.tensor([0.02, 0.002, 0.02])  # along each Gaussian's axes: the second is its normal...
    scales = torch.cat([flat.expand(8000, 3), flat.expand(600, 3), torch.tensor([0.02, 0.02, 0.002]).expand(5000, 3),
                        flat.expand(800, 3), torch.full((1500, 3), 0.01)])  # ...the trunk's third, radial
    truth = torch.cat([torch.zeros(8600), torch.ones(5800), torch.full((1500,), 2)]).long()
    N = len(means)
    axes = axes * torch.linalg.det(axes).sign()[:, None, None]  # proper rotations
    params = {"means": means, "quats": rotmat_to_quat(axes), "scales": scales.log(),
              "opacities": torch.full((N,), 3.0), "sh0": torch.zeros(N, 1, 3), "shN": torch.zeros(N, 0, 3)}
    return params, truth


def test_on_uneven_ground_what_stands_is_apart_from_what_faces_up():
    from spatial.splats.objects import ObjectsConfig

    params, truth = uneven_world()
    no_plane = ObjectsConfig(max_planes=0)  # ground that is no plane (grass, leaves): no plane is taken out
    labels = segment(params, no_plane)
    trunk, bush, ground = (labels[truth == k] for k in (1, 2, 0))
    assert len(torch.unique(trunk)) == 1  # the trunk and its top facing up, one object
    assert len(torch.unique(bush)) == 1 and bush[0] != trunk[0]
    # the ground, and the litter on it away from the trunk and the bush (a leaf at the trunk's foot is the
    # trunk's: most of what it touches is), are the surroundings
    x, z = params["means"][:, 0], params["means"][:, 2]
    away = ((x**2 + z**2).sqrt() > 0.5) & (((x - 1.2) ** 2 + (z - 1.2) ** 2).sqrt() > 0.4)  # link: 8 spacings, 0.12
    surroundings = labels[(truth == 0) & away]
    assert (surroundings == surroundings[0]).all() and surroundings[0] not in (trunk[0], bush[0])
    assert not (labels[:8000] == trunk[0]).any()  # no ground facing up at all
    # without the orientation rule everything touching is one object
    plain = segment({k: v for k, v in params.items() if k not in ("quats", "scales")}, no_plane)
    assert (plain[truth == 1] == plain[truth == 0][0]).all()


def test_the_world_segments_in_world_coordinates():
    """A layer made z-up in its own frame and turned -y-up by its transform: the ground rule sees it upright."""
    from spatial.splats.objects import ObjectsConfig
    from spatial.splats.transform import transform_splats

    params, truth = uneven_world()
    turn = torch.eye(4)
    turn[:3, :3] = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # x, y, z -> x, z, -y: -y up becomes z up
    world = World()
    world.add_layer("turned", transform_splats(params, turn))
    world.layer("turned").transform = torch.linalg.inv(turn)
    labels = world.segment(ObjectsConfig(max_planes=0))["turned"]
    assert len(torch.unique(labels[truth == 1])) == 1 and not (labels[:8000] == labels[truth == 1][0]).any()
