"""The viewer's level of detail (viewer/lod.py, ViewerApp): what is sent to the browser is bounded by the budget,
chosen by the camera's distance, merged in the background, and follows selections and edits."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from spatial.splats.select import importance
from spatial_viewer.lod import LayerChunks, LodConfig, camera_levels, level_count, uniform_levels
from tests.helpers import big_world, free_port, random_splat_params


def test_chunks_cut_the_layer_by_place_and_order_each_most_important_first():
    params = random_splat_params(5000, sh_degree=1, seed=2)
    chunks = LayerChunks(params, chunk=700)
    rows = np.concatenate(chunks.rows)
    assert np.array_equal(np.sort(rows), np.arange(5000))  # every Gaussian in exactly one chunk
    assert len(chunks) == 8 and chunks.sizes.max() <= 700  # median splits: 5000 -> 8 chunks of 625
    weight = importance(params).numpy()
    means = params["means"].numpy()
    for c, r in enumerate(chunks.rows):
        assert np.all(np.diff(weight[r]) <= 0)
        assert np.allclose(chunks.lo[c], means[r].min(0)) and np.allclose(chunks.hi[c], means[r].max(0))
        assert np.array_equal(chunks.rows_at(c, 2), r[: math.ceil(len(r) / 4)])  # level 2: the first quarter
    assert chunks.distances(chunks.lo[3] + 0.5 * (chunks.hi[3] - chunks.lo[3]))[3] == 0  # inside its box


def test_levels_fit_the_budget_and_coarsen_with_distance():
    chunks = LayerChunks(big_world(40_000), chunk=1000)
    eye = np.array([2.5, 0.9, 2.5])  # just above a corner of the ground
    [levels] = camera_levels([chunks], [eye], [1.0], budget=8000)
    total = int(level_count(chunks.sizes, levels).sum())
    assert 4000 < total <= 8000  # the budget, used
    d = chunks.distances(eye)
    assert levels[np.argmin(d)] == 0 and levels[np.argmax(d)] > 2
    order = np.argsort(d)
    assert np.all(np.diff(levels[order]) >= 0)  # never finer farther away
    # a camera twice as far in the same layer scaled by 2 (its unit is 2 world units) gets the same levels
    assert np.array_equal(camera_levels([chunks], [eye], [2.0], 8000)[0], levels)
    assert not camera_levels([chunks], [eye], [1.0], budget=40_000)[0].any()  # all of it fits: all of it
    [preview] = uniform_levels([chunks], 1000)
    assert len(set(preview.tolist())) == 1 and level_count(chunks.sizes, preview).sum() <= 1000
    # a budget below one Gaussian per chunk: one each, the most important
    [least] = camera_levels([chunks], [eye], [1.0], budget=10)
    assert np.array_equal(level_count(chunks.sizes, least), np.ones(len(chunks)))


def test_a_prefix_keeps_its_chunks_opacity_times_area():
    params = random_splat_params(3000, sh_degree=0, seed=4)
    chunks = LayerChunks(params, chunk=1000)
    full = importance(params)
    for c in range(len(chunks)):
        splats, lit, merged = chunks.splats_at(c, 3)
        assert not merged and splats["means"].shape[0] == math.ceil(chunks.sizes[c] / 8) and not lit.any()
        kept = float(importance(splats).sum())
        assert kept == pytest.approx(float(full[torch.from_numpy(chunks.rows[c])].sum()), rel=1e-4)
    level0, _, _ = chunks.splats_at(0, 0)
    torch.testing.assert_close(level0["scales"], params["scales"][torch.from_numpy(chunks.rows[0])])


def test_merged_levels_carry_a_selection():
    params = random_splat_params(2000, sh_degree=1, seed=5)
    chunks = LayerChunks(params, chunk=1000)
    chunks.merge_levels(0)
    assert sorted(chunks.merged[0]) == list(range(1, int(chunks.coarsest[0]) + 1))
    rows = torch.from_numpy(chunks.rows[0])
    selected = torch.zeros(2000, dtype=torch.bool)
    selected[rows[::7]] = True
    splats, lit, merged = chunks.splats_at(0, 2, selected=selected)
    _, owner = chunks.merged[0][2]
    assert merged and splats["means"].shape[0] == 250
    assert torch.equal(lit, torch.zeros(250, dtype=torch.bool).index_fill_(0, owner[selected[rows]], True))
    assert 0 < lit.sum() < 250
    assert chunks.merged[0][int(chunks.coarsest[0])] is None  # a level of one Gaussian stays a prefix
    prefix, _, merged = chunks.splats_at(0, 2, params=params)  # a colour preview draws the prefix
    assert not merged and prefix["means"].shape[0] == 250


def test_the_viewer_sends_a_preview_then_what_the_camera_needs_then_merged_levels(tmp_path):
    from spatial_viewer.app import ViewerApp
    from spatial_viewer.world import World

    world = World()
    world.add_layer("big", big_world(60_000))
    world.forget_history()
    app = ViewerApp(world, out=tmp_path / "edited.ply", lod=LodConfig(budget=12_000, preview=2_000, chunk=2_000))
    app.start("127.0.0.1", free_port())
    try:
        chunks = app._chunks["big"][1]
        assert len(chunks) == 32 and 1_000 < app.drawn_count() <= 2_000  # the preview
        eye = np.array([2.9, 0.95, 2.9])  # at a corner of the ground
        app.relevel(eye)
        levels = app._levels["big"]
        assert 6_000 < app.drawn_count() <= 12_000
        d = chunks.distances(eye)
        assert levels[np.argmin(d)] == 0 and levels[np.argmax(d)] >= 3
        deadline = time.time() + 120
        while time.time() < deadline and not app._merged["big"][levels > 0].all():
            time.sleep(0.2)
        assert app._merged["big"][levels > 0].all()  # merged in the background, and sent
        assert not app._merged["big"][levels == 0].any()
        assert app.relevel() == 0  # nothing changed since

        # a selection is highlighted on the merged chunks; deleting it rebuilds the chunks
        app.edit(lambda: world.select_box(torch.tensor([-3.0, 0.9, -3.0]), torch.tensor([0.0, 1.1, 0.0])))
        assert app._chunks["big"][1] is chunks and app._merged["big"][levels > 0].all()
        app.edit(world.delete_selected)
        assert app._chunks["big"][1] is not chunks and world.layers[0].count < 60_000
        assert app.drawn_count() <= 12_000 and app._levels["big"][np.argmin(app._chunks["big"][1].distances(eye))] == 0
        app.set_budget(100_000)  # more than the world: all of it
        assert app.drawn_count() == world.layers[0].count
    finally:
        app.stop()
