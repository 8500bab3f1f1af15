"""SuperSplat-class edits on the viewer's world model, no browser: selections on screen (rectangle, front-most,
pick, similar colour), colour grading, measure-and-scale, up from three points, layer management and named
history. Every edit is undone and redone back to identical parameters."""

import math

import numpy as np
import pytest
import torch

from spatial import SpatialError
from spatial.cameras import Cameras, intrinsics_from_fov, look_at
from spatial.formats import load_splats
from spatial.render.sh import eval_sh
from spatial.splats.colour import ColourAdjustment, colour_map
from spatial_viewer.world import World

W, H = 320, 240


def splats(n, seed=0, sh_bands=3):
    g = torch.Generator().manual_seed(seed)
    return {
        "means": torch.rand(n, 3, generator=g) * 2 - 1,
        "quats": torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        "scales": torch.rand(n, 3, generator=g) * 2 - 5,
        "opacities": torch.randn(n, generator=g) * 2,
        "sh0": torch.randn(n, 1, 3, generator=g),
        "shN": torch.randn(n, sh_bands, 3, generator=g) * 0.1,
    }


def wall(z: float, rgb, n_side: int = 60, half: float = 1.0) -> dict:
    """A square of opaque flat Gaussians at depth `z` (facing the camera at the origin), `n_side`^2 of them."""
    s = torch.linspace(-half, half, n_side)
    y, x = torch.meshgrid(s, s, indexing="ij")
    n = n_side * n_side
    step = 2 * half / (n_side - 1)
    return {"means": torch.stack([x.reshape(-1), y.reshape(-1), torch.full((n,), z)], -1),
            "quats": torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4).clone(),
            "scales": torch.log(torch.tensor([[step, step, 1e-3]])).expand(n, 3).clone(),
            "opacities": torch.full((n,), 5.0),
            "sh0": ((torch.tensor(rgb, dtype=torch.float32) - 0.5) / 0.28209479177387814).expand(n, 1, 3).clone(),
            "shN": torch.zeros(n, 0, 3)}


def camera(eye=(0.0, 0.0, 0.0), target=(0.0, 0.0, 5.0), fov=60.0) -> Cameras:
    c2w = look_at(torch.tensor([eye], dtype=torch.float64), torch.tensor([target], dtype=torch.float64),
                  torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)).float()
    return Cameras(c2w, intrinsics_from_fov(fov, W, H)[None].float(), W, H)


def snapshot(world: World) -> list:
    return [(l.name, l.visible, l.locked, l.transform.clone(), {k: v.clone() for k, v in l.params.items()},
             world.selection[l.name].clone()) for l in world.layers]


def assert_same(world: World, before: list) -> None:
    now = snapshot(world)
    assert [x[:3] for x in now] == [x[:3] for x in before]
    for (*_, T, p, m), (*_, T0, p0, m0) in zip(now, before):
        assert torch.equal(T, T0) and torch.equal(m, m0)
        assert p.keys() == p0.keys() and all(torch.equal(p[k], p0[k]) for k in p)


def undo_redo(world: World, before: list) -> None:
    """The last edit undone gives `before` exactly; redone, exactly what it made."""
    after = snapshot(world)
    assert world.undo()
    assert_same(world, before)
    assert world.redo()
    assert_same(world, after)


def test_rectangle_selects_exactly_the_centres_that_project_inside():
    world = World()
    params = splats(5000)
    params["means"] = params["means"] * torch.tensor([2.0, 2.0, 1.0]) + torch.tensor([0.0, 0.0, 4.0])
    world.add_layer("a", params)
    cam = camera()
    # independently, in numpy float64: OpenCV projection of the centres
    w2c = np.linalg.inv(cam.cam_to_world[0].double().numpy())
    p = params["means"].double().numpy() @ w2c[:3, :3].T + w2c[:3, 3]
    K = cam.K[0].double().numpy()
    u, v = K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2], K[1, 1] * p[:, 1] / p[:, 2] + K[1, 2]
    inside = (u >= 50) & (u <= 200) & (v >= 40) & (v <= 150) & (p[:, 2] > 0.01)
    before = snapshot(world)
    assert world.select_rect(cam, (50, 40), (200, 150)) == inside.sum() > 100
    assert np.array_equal(world.selection["a"].numpy(), inside)
    undo_redo(world, before)
    right = (u >= 120) & (u <= 300) & (v >= 0) & (v <= 240) & (p[:, 2] > 0.01)
    world.select_rect(cam, (120, 0), (300, 240), mode="subtract")
    assert np.array_equal(world.selection["a"].numpy(), inside & ~right)
    world.select_rect(cam, (120, 0), (300, 240), mode="add")
    assert np.array_equal(world.selection["a"].numpy(), inside | right)
    world.select_rect(cam, (0, 0), (150, 240), mode="intersect")
    assert np.array_equal(world.selection["a"].numpy(), (inside | right) & (u <= 150) & (u >= 0))


def test_front_only_leaves_out_what_a_nearer_surface_hides():
    world = World()
    world.add_layer("front", wall(3.0, (1.0, 0.0, 0.0), half=0.5))
    world.add_layer("back", wall(5.0, (0.0, 0.0, 1.0), half=2.0))
    cam = camera()
    everything = world.select_rect(cam, (0, 0), (W, H))
    assert world.selection["front"].all() and world.selection["back"].any()
    front = world.select_rect(cam, (0, 0), (W, H), front_only=True)
    assert world.selection["front"].all()  # the near wall is all in front
    back = world.layer("back").params["means"]
    # the far wall behind the near one (its 0.5 half-width at depth 3 covers 0.83 at depth 5) is left out
    hidden = (back[:, :2].abs() < 0.5 * 5 / 3 - 0.06).all(-1)
    open_ = (back[:, :2].abs() > 0.5 * 5 / 3 + 0.06).any(-1)
    assert not world.selection["back"][hidden].any()
    on_screen = world.selection["back"] | ~open_  # what the rectangle (the whole picture) takes of the rest
    assert world.selection["back"][open_ & on_screen].float().mean() > 0.99
    assert front < everything


def test_pick_finds_the_drawn_surface_and_similar_colours():
    world = World()
    world.add_layer("front", wall(3.0, (1.0, 0.0, 0.0), half=0.5))
    world.add_layer("back", wall(5.0, (0.0, 0.0, 1.0), half=2.0))
    cam = camera()
    pick = world.pick(cam, (W / 2, H / 2))  # the centre of the picture is on the near wall
    assert pick.layer == "front" and abs(float(pick.point[2]) - 3.0) < 0.01
    assert float(pick.point[:2].norm()) < 0.02
    far = world.pick(cam, (60.0, H / 2))  # left of the near wall: the far wall
    assert far.layer == "back" and abs(float(far.point[2]) - 5.0) < 0.01
    assert world.pick(camera(target=(0.0, 0.0, -5.0)), (W / 2, H / 2)) is None  # nothing behind the camera
    before = snapshot(world)
    assert world.select_similar(pick, 0.1) == world.layer("front").count
    assert world.selection["front"].all() and not world.selection["back"].any()
    undo_redo(world, before)
    world.set_locked("front", True)  # a locked layer is not picked, though it still hides what is behind it
    assert world.pick(cam, (W / 2, H / 2)).layer == "back"


def test_colour_grading_maps_the_colour_from_every_direction_and_undoes():
    world = World()
    params = splats(400, sh_bands=15)
    world.add_layer("a", params)
    world.select_sphere(torch.zeros(3), 0.8)
    mask = world.selection["a"].clone()
    adjustment = ColourAdjustment(brightness=0.05, contrast=0.2, saturation=-0.4, temperature=0.3, tint=-0.2,
                                  opacity=0.5)
    preview = world.colour_preview(adjustment, "selection")
    assert torch.equal(world.layer("a").params["sh0"], params["sh0"])  # a preview changes nothing
    before = snapshot(world)
    assert world.adjust_colour(adjustment) == int(mask.sum())
    graded = world.layer("a").params
    assert all(torch.equal(graded[k], preview["a"][k]) for k in graded)
    A, b = colour_map(adjustment)
    dirs = torch.nn.functional.normalize(torch.randn(50, 3, generator=torch.Generator().manual_seed(1)), dim=-1)

    def colour(p):  # [N, D, 3]: 0.5 + the SH sum, from each direction
        coeffs = torch.cat([p["sh0"], p["shN"]], 1).double()
        return eval_sh(3, coeffs[:, None], dirs.double()[None, :, :]) + 0.5

    expected = colour(params) @ A.T + b
    torch.testing.assert_close(colour(graded)[mask], expected[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(colour(graded)[~mask], colour(params)[~mask], atol=0, rtol=0)
    torch.testing.assert_close(torch.sigmoid(graded["opacities"][mask]),
                               0.5 * torch.sigmoid(params["opacities"][mask]), atol=1e-5, rtol=1e-4)
    undo_redo(world, before)
    # a whole layer, and a neutral grade is a no-op on the colour
    assert world.adjust_colour(ColourAdjustment(), "a") == 400
    torch.testing.assert_close(world.layer("a").params["sh0"], graded["sh0"], atol=1e-6, rtol=0)
    world.clear_selection()
    with pytest.raises(SpatialError, match="nothing is selected"):
        world.adjust_colour(adjustment)
    world.set_visible("a", False)
    with pytest.raises(SpatialError, match="hidden or locked"):
        world.adjust_colour(adjustment, "a")


def test_saturation_minus_one_is_grey_and_contrast_minus_one_is_mid_grey():
    A, b = colour_map(ColourAdjustment(saturation=-1.0))
    rgb = torch.tensor([0.9, 0.2, 0.4], dtype=torch.float64)
    grey = A @ rgb + b
    assert torch.allclose(grey, grey.mean().expand(3)) and abs(float(grey[0]) - (0.2126 * 0.9 + 0.7152 * 0.2 +
                                                                                 0.0722 * 0.4)) < 1e-9
    A, b = colour_map(ColourAdjustment(contrast=-1.0))
    assert torch.allclose(A @ rgb + b, torch.full((3,), 0.5, dtype=torch.float64))
    A, b = colour_map(ColourAdjustment(temperature=1.0))
    warm = A @ torch.full((3,), 0.5, dtype=torch.float64) + b
    assert warm[0] > 0.5 > warm[2] and abs(float(warm[1]) - 0.5) < 1e-12


def test_measure_and_scale_makes_the_distance_true():
    world = World()
    world.add_layer("a", splats(100))
    world.add_layer("b", splats(50, seed=1))
    a, b = world.layer("a").world_means()[0].clone(), world.layer("a").world_means()[7].clone()
    before = snapshot(world)
    factor = world.scale_to_length(a, b, 2.5)
    after = world.layer("a").world_means()
    assert abs(float((after[0] - after[7]).norm()) - 2.5) < 1e-5
    assert abs(factor * float((a - b).norm()) - 2.5) < 1e-5
    torch.testing.assert_close(world.layer("b").world_means(), splats(50, seed=1)["means"] * factor)
    undo_redo(world, before)
    world.scale_to_length(a * factor, b * factor, 1.0, layer="b")  # one layer only
    torch.testing.assert_close(world.layer("a").world_means(), after)
    with pytest.raises(SpatialError, match="positive length"):
        world.scale_to_length(a, b, -1.0)
    with pytest.raises(SpatialError, match="two distinct points"):
        world.scale_to_length(a, a, 1.0)


def test_up_from_three_ground_points_levels_the_world():
    world = World()
    world.add_layer("a", splats(100))
    tilt = torch.tensor([[1.0, 0, 0], [0, math.cos(0.4), -math.sin(0.4)], [0, math.sin(0.4), math.cos(0.4)]])
    ground = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) @ tilt.T + torch.tensor([0.3, 2, 0])
    above = ground.mean(0) - tilt @ torch.tensor([0.0, 1.0, 0.0])  # where the camera was: on the -y side
    before = snapshot(world)
    R = world.set_up(ground, above)
    level = ground @ R.T
    normal = torch.linalg.cross(level[1] - level[0], level[2] - level[0])
    normal = normal / normal.norm()
    assert abs(float(normal[1].abs()) - 1) < 1e-5  # the ground is level: its normal is the y axis
    assert float(((above @ R.T) - level[0])[1]) < 0  # and the camera's side is up (-y)
    undo_redo(world, before)
    with pytest.raises(SpatialError, match="on a line"):
        world.set_up(torch.tensor([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]]), above)


def test_layers_hide_lock_rename_duplicate_split_delete_each_undone(tmp_path):
    world = World()
    world.add_layer("a", splats(200))
    world.add_layer("b", splats(100, seed=1))
    world.forget_history()
    steps = [
        lambda: world.set_visible("b", False),
        lambda: world.set_locked("b", True),
        lambda: world.rename_layer("a", "garden"),
        lambda: world.duplicate_layer("garden"),
        lambda: world.select_sphere(torch.zeros(3), 0.7),
        lambda: world.split_selection("statue"),
        lambda: world.delete_layer("garden copy"),
    ]
    for step in steps:
        before = snapshot(world)
        step()
        undo_redo(world, before)
    assert [l.name for l in world.layers] == ["garden", "b", "statue"]
    assert not world.layer("b").visible and world.layer("b").locked
    # the statue took the sphere's Gaussians from the garden and from its copy (deleted since)
    assert world.layer("statue").count == 2 * (200 - world.layer("garden").count) > 0
    assert [label for label, done in world.history()] == [
        "hide b", "lock b", "rename a to garden", "duplicate garden", "select in sphere", "selection to new layer",
        "delete layer garden copy"]
    world.undo()
    assert world.history()[-1] == ("delete layer garden copy", False)
    with pytest.raises(SpatialError, match="already"):
        world.rename_layer("statue", "garden")
    with pytest.raises(SpatialError, match="cannot name a layer"):
        world.rename_layer("statue", "../x")
    # a hidden or locked layer is out of reach of selections and edits
    world.set_visible("b", True)
    assert world.select_sphere(torch.zeros(3), 100.0) == world.layer("garden").count + world.layer("statue").count \
        + world.layer("garden copy").count
    world.delete_selected()
    assert world.layer("b").count == 100


def test_each_layer_saved_apart_and_the_world_file_asks_before_overwriting(tmp_path):
    world = World()
    world.add_layer("a", splats(30))
    world.add_layer("b", splats(20, seed=1))
    world.set_locked("b", True)
    world.scale_to_length(torch.zeros(3), torch.tensor([1.0, 0, 0]), 2.0)
    files = world.save_layers(tmp_path / "out.ply")
    assert [f.name for f in files] == ["out-a.ply", "out-b.ply"]
    torch.testing.assert_close(load_splats(files[1])["means"], splats(20, seed=1)["means"] * 2)
    world.save_world(tmp_path / "w.world.json")
    with pytest.raises(FileExistsError, match="confirm to overwrite"):
        world.save_world(tmp_path / "w.world.json")
    world.save_world(tmp_path / "w.world.json", overwrite=True)
    back = World.load_world(tmp_path / "w.world.json")
    assert back.layer("b").locked and not back.layer("a").locked


def test_the_panels_preview_and_apply_a_grade_click_tools_and_follow_the_layers(tmp_path):
    """The panels without a browser: a colour grade previewed (the world unchanged) then applied as one step;
    the pick, similar, measure and set-up tools from a click; the layer controls following the world."""
    import socket

    from spatial_viewer.app import ViewerApp

    world = World()
    world.add_layer("front", wall(3.0, (1.0, 0.0, 0.0), half=0.5))
    world.add_layer("back", wall(5.0, (0.0, 0.0, 1.0), half=2.0))
    world.forget_history()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = ViewerApp(world, out=tmp_path / "edited.ply")
    app.start("127.0.0.1", port)
    try:
        cam = camera()
        app.tools.use("pick")
        app.tools.click(cam, (W / 2, H / 2))
        assert world.selected_count() == 1 and world.selection["front"].sum() == 1
        app.tools.use("select similar")
        app.tools.click(cam, (W / 2, H / 2))
        assert world.selection["front"].all() and not world.selection["back"].any()

        red = world.layer("front").params["sh0"].clone()
        app.colour.sliders["saturation"].value = -1.0
        app.colour.preview()
        grey = app.preview["front"]["sh0"][:, 0] * 0.28209479177387814 + 0.5
        assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5) and torch.equal(world.layer("front").params["sh0"],
                                                                                   red)
        app.colour.apply()
        assert app.preview == {} and not torch.equal(world.layer("front").params["sh0"], red)
        assert world.history()[-1] == ("colour selection", True)
        assert app.colour.sliders["saturation"].value == 0.0

        app.tools.use("measure")
        app.tools.click(cam, (W / 2, H / 2))
        app.tools.click(cam, (60.0, H / 2))
        measured = app.tools.distance()
        app.tools.length.value = 2 * measured
        app.edit(app.tools.scale_to_length)
        assert abs(app.tools.distance() - 2 * measured) < 1e-4
        assert world.history()[-1][0].startswith("scale world")
        app.layers.pick.value = "back"
        app.tools.layer_only.value = True  # the layer chosen in the Layers panel alone
        app.tools.length.value = measured
        front = world.layer("front").transform.clone()
        app.edit(app.tools.scale_to_length)
        assert world.history()[-1][0].startswith("scale back x0.5")
        assert torch.equal(world.layer("front").transform, front)
        torch.testing.assert_close(world.layer("back").transform[:3, :3], torch.eye(3), atol=1e-6, rtol=0)

        app.layers.pick.value = "back"
        app.layers.locked.value = True  # the checkbox's callback locks the layer through the world
        assert world.layer("back").locked
        app.edit(lambda: world.rename_layer("back", "far wall"))
        assert "far wall" in app.layers.pick.options and "far wall" in app.colour.target.options
        assert "rename back to far wall" in app.edit_panel.history.content

        app.layers.save_world()
        first = (tmp_path / "edited.world.json").read_text()
        app.edit(lambda: world.delete_layer("front"))
        app.layers.save_world()  # exists: a dialog asks first (no browser here answers), nothing is written
        assert (tmp_path / "edited.world.json").read_text() == first
    finally:
        app.stop()
