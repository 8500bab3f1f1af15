"""Fewer Gaussians (spatial.splats.simplify): moment-matched merging, the greedy pairing it rests on, and the
refinement that fits the smaller world to the full one."""

from __future__ import annotations

import pytest
import torch

from spatial.splats import simplify as S
from tests.helpers import random_splat_params


def test_merging_keeps_the_moments_of_what_it_merges():
    # two equal Gaussians one unit apart along x merge into one centred between them, stretched along x
    params = {"means": torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [9.0, 9, 9]]), "quats": torch.eye(4)[[0, 0, 0]],
              "scales": torch.log(torch.full((3, 3), 0.5)), "opacities": torch.zeros(3),
              "sh0": torch.tensor([[[1.0, 0, 0]], [[0.0, 1, 0]], [[0.0, 0, 1]]]), "shN": torch.zeros(3, 3, 3)}
    out = S.merge_to(params, 2, torch.ones(3))
    torch.testing.assert_close(out["means"], torch.tensor([[9.0, 9, 9], [0.5, 0, 0]]))  # the lone one first
    # variance along x: 0.25 + 0.25 (the spread of the two centres about their mean); y and z: 0.25
    assert sorted(torch.exp(2 * out["scales"][1]).tolist()) == pytest.approx([0.25, 0.25, 0.5])
    torch.testing.assert_close(out["sh0"][1], torch.tensor([[0.5, 0.5, 0.0]]))
    torch.testing.assert_close(out["sh0"][0], params["sh0"][2])  # the lone one is unchanged
    torch.testing.assert_close(out["scales"][0], params["scales"][2])
    # opacity x area is kept: 2 x 0.5 x 0.25 over the merged area sqrt(0.5 x 0.25)
    assert float(torch.sigmoid(out["opacities"][1])) == pytest.approx(0.25 / 0.5**0.5 / 0.5, rel=1e-5)


def test_the_more_important_gaussian_keeps_more_of_its_place_and_colour():
    params = {"means": torch.tensor([[0.0, 0, 0], [1.0, 0, 0]]), "quats": torch.eye(4)[[0, 0]],
              "scales": torch.log(torch.full((2, 3), 0.5)), "opacities": torch.zeros(2),
              "sh0": torch.tensor([[[1.0, 0, 0]], [[0.0, 1, 0]]]), "shN": torch.zeros(2, 0, 3)}
    out = S.merge_to(params, 1, torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(out["means"], torch.tensor([[0.25, 0, 0]]))
    torch.testing.assert_close(out["sh0"], torch.tensor([[[0.75, 0.25, 0.0]]]))


def test_each_merged_gaussian_knows_what_it_was_merged_from():
    # over several generations, each result is the importance-weighted mean of the inputs it says it holds
    params = random_splat_params(400, sh_degree=1, seed=3)
    weight = torch.rand(400, generator=torch.Generator().manual_seed(1)) + 0.1
    out, owner = S.merge_tracked(params, 37, weight)
    assert out["means"].shape[0] == 37 and owner.shape == (400,) and owner.min() >= 0
    assert torch.equal(torch.unique(owner), torch.arange(37))  # every result holds at least one input
    w = weight.double()
    mean = torch.zeros(37, 3, dtype=torch.float64).index_add_(0, owner, w[:, None] * params["means"].double())
    mean /= torch.zeros(37, dtype=torch.float64).index_add_(0, owner, w)[:, None]
    torch.testing.assert_close(out["means"].double(), mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(S.merge_to(params, 37, weight)["means"], out["means"])


def _greedy(a, b, cost, take):  # the textbook greedy matching: cheapest link first, both ends free
    used, pairs = set(), []
    for e in sorted(range(len(a)), key=lambda e: (float(cost[e]), e)):
        i, j = int(a[e]), int(b[e])
        if i not in used and j not in used and len(pairs) < take:
            used |= {i, j}
            pairs.append((i, j))
    return pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pairs_are_the_greedy_matching_in_cost_order(seed):
    g = torch.Generator().manual_seed(seed)
    n = 60
    a = torch.randint(n, (300,), generator=g)
    b = (a + 1 + torch.randint(n - 1, (300,), generator=g)) % n  # never a self-link
    cost = torch.rand(300, generator=g)
    cost[::7] = cost[3]  # ties, broken by link order as the greedy's sort does
    cost[5] = float("inf")  # a link that must never be taken
    for take in (1, 7, 30):
        pa, pb = S._cheapest_disjoint_pairs(a, b, cost, n, take)
        assert list(zip(pa.tolist(), pb.tolist())) == _greedy(a, b, cost, take)


def test_merging_meets_any_count_without_cameras():
    params = random_splat_params(500, sh_degree=1)
    params["means"][:100] = 0.0  # a hundred at one point: merged without a division by zero
    for count in (499, 250, 37, 1):
        out = S.simplify(params, count)
        assert out["means"].shape == (count, 3) and out["shN"].shape == (count, 3, 3)
        assert all(bool(torch.isfinite(v).all()) for v in out.values())
    # the world's extent is kept: merging averages, it does not move Gaussians outside their pairs
    out = S.simplify(params, 50)
    assert float(out["means"].abs().max()) <= float(params["means"].abs().max())


def test_refining_brings_the_smaller_world_closer_to_the_full_one(trained_run):
    from spatial.metrics import psnr
    from spatial.trained import load_splat_model

    model = load_splat_model(trained_run)
    scene = model.scene()
    cameras, held_out = scene.cameras[scene.train_ids], scene.cameras[scene.test_ids]  # fitted on one, scored on one
    assert len(held_out) >= 2
    full = {k: v.detach() for k, v in model.params.items()}
    background = torch.tensor(model.background)
    count = model.count // 4
    merged = S.simplify(full, count, cameras, refine_steps=0)
    steps = []
    refined = S.simplify(full, count, cameras, 80, background, progress=lambda done, total: steps.append(done))
    assert steps == list(range(1, 81))

    def score(params):
        return float(psnr(type(model)(params, trained_run, background=model.background).render(held_out).rgb,
                          model.render(held_out).rgb))

    dropped = {k: v[S.select.most_important(full, count, cameras)] for k, v in full.items()}
    print(f"a quarter of the Gaussians, held-out views: kept the most important {score(dropped):.2f} dB, "
          f"merged {score(merged):.2f} dB, merged and refined {score(refined):.2f} dB")
    assert score(merged) > score(dropped) + 1
    assert score(refined) > score(merged) + 1
