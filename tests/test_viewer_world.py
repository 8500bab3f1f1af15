"""The viewer's world model: selection, delete, crop, transform, merge, tint, undo/redo, files."""

import pytest
import torch

from spatial import SpatialError
from spatial.formats import load_splats
from spatial.transforms import make_transform
from spatial_viewer.world import World


def splats(n, offset=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "means": torch.rand(n, 3, generator=g) * 2 - 1 + offset,
        "quats": torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        "scales": torch.rand(n, 3, generator=g) * 2 - 5,
        "opacities": torch.randn(n, generator=g) * 2,
        "sh0": torch.randn(n, 1, 3, generator=g),
        "shN": torch.randn(n, 3, 3, generator=g) * 0.1,
    }


def test_select_delete_and_undo_redo():
    world = World()
    world.add_layer("a", splats(1000))
    lo, hi = torch.tensor([-1.0, -1, -1]), torch.tensor([0.0, 0, 0])
    inside = ((world.layer("a").params["means"] >= lo) & (world.layer("a").params["means"] <= hi)).all(-1)
    assert world.select_box(lo, hi) == int(inside.sum()) > 0
    removed = world.delete_selected()
    assert removed == int(inside.sum()) and world.layer("a").count == 1000 - removed
    assert not ((world.layer("a").params["means"] >= lo) & (world.layer("a").params["means"] <= hi)).all(-1).any()
    assert world.undo() and world.layer("a").count == 1000 and world.selected_count() == removed
    assert world.redo() and world.layer("a").count == 1000 - removed
    assert world.undo() and world.undo() and world.selected_count() == 0  # before the selection
    assert world.undo() and world.layers == [] and not world.undo()


def test_selection_modes_opacity_scale_sphere_and_keep():
    world = World()
    params = splats(500)
    world.add_layer("a", params)
    faint = torch.sigmoid(params["opacities"]) < 0.3
    assert world.select_opacity_below(0.3) == int(faint.sum())
    big = torch.exp(params["scales"]).max(-1).values > 0.02
    assert world.select_scale_above(0.02, mode="add") == int((faint | big).sum())
    assert world.select_sphere(torch.zeros(3), 0.5, mode="intersect") == int(
        ((faint | big) & (params["means"].norm(dim=-1) <= 0.5)).sum())
    n = world.selected_count()
    world.keep_selected()
    assert world.layer("a").count == n
    world.invert_selection()
    assert world.selected_count() == n
    world.clear_selection()
    assert world.selected_count() == 0


def test_crop_transform_merge_and_save(tmp_path):
    world = World()
    world.add_layer("a", splats(300))
    world.add_layer("a", splats(200, seed=1))  # same name: made unique
    assert [l.name for l in world.layers] == ["a", "a-2"]
    T = make_transform(torch.eye(3), torch.tensor([5.0, 0, 0]), 2.0)
    world.set_transform("a-2", T)
    moved = world.layer("a-2").world_means()
    torch.testing.assert_close(moved, world.layer("a-2").params["means"] * 2 + torch.tensor([5.0, 0, 0]))
    # cropping works in world coordinates: keep only the moved layer
    world.crop_box(torch.tensor([2.0, -5, -5]), torch.tensor([10.0, 5, 5]))
    assert world.layer("a").count == 0 and world.layer("a-2").count == 200
    world.undo()
    merged = world.merge_layers()
    assert merged.count == 500 and len(world.layers) == 1
    torch.testing.assert_close(merged.params["means"][300:], moved)
    original_scales = splats(200, seed=1)["scales"]
    torch.testing.assert_close(merged.params["scales"][300:], original_scales + torch.log(torch.tensor(2.0)))
    assert world.save_splats(tmp_path / "w.ply") == 500
    saved = load_splats(tmp_path / "w.ply")
    torch.testing.assert_close(saved["means"][300:], moved)


def test_world_file_remembers_layers_and_transforms(tmp_path):
    world = World()
    world.add_layer("garden", splats(50), source="garden.ply")
    world.add_layer("statue", splats(30, seed=2))
    T = make_transform(torch.eye(3), torch.tensor([0.0, 1, 0]), 1.5)
    world.set_transform("statue", T)
    world.save_world(tmp_path / "scene.world.json")
    back = World.load_world(tmp_path / "scene.world.json")
    assert [l.name for l in back.layers] == ["garden", "statue"]
    torch.testing.assert_close(back.layer("statue").transform, T)
    torch.testing.assert_close(back.layer("statue").params["means"], world.layer("statue").params["means"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SpatialError, match="not a world file"):
        World.load_world(tmp_path / "bad.json")


def test_tint_recolours_only_the_selection():
    world = World()
    params = splats(100)
    world.add_layer("a", params)
    world.select_sphere(torch.zeros(3), 0.6)
    mask = world.selection["a"].clone()
    world.tint_selected((1.0, 0.0, 0.0))
    rgb = world.layer("a").params["sh0"][:, 0] * 0.28209479177387814 + 0.5
    torch.testing.assert_close(rgb[mask], torch.tensor([1.0, 0, 0]).expand(int(mask.sum()), 3), atol=1e-6, rtol=0)
    assert torch.equal(world.layer("a").params["sh0"][~mask], params["sh0"][~mask])
    world.undo()
    assert torch.equal(world.layer("a").params["sh0"], params["sh0"])


def test_saving_an_empty_world_is_refused(tmp_path):
    world = World()
    world.add_layer("a", splats(10))
    world.select_sphere(torch.zeros(3), 100.0)
    world.delete_selected()
    with pytest.raises(SpatialError, match="the world is empty"):
        world.save_splats(tmp_path / "x.ply")


def test_history_keeps_the_last_steps_and_a_new_step_drops_the_redo():
    from spatial_viewer.history import History

    h = History(limit=2)
    for i, label in enumerate(("a", "b", "c")):
        h.record(label, i)  # the snapshot before step `label`
    assert h.steps() == [("b", True), ("c", True)]  # "a" fell off
    assert h.undo(3) == 2 and h.undo(2) == 1 and h.undo(1) is None
    assert h.steps() == [("b", False), ("c", False)]
    assert h.redo(1) == 2 and h.steps() == [("b", True), ("c", False)]
    h.record("d", 2)
    assert h.steps() == [("b", True), ("d", True)] and h.redo(5) is None
