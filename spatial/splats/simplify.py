"""Fewer Gaussians that render nearly the same: `--max-splats` on every splat export.

Two stages, the second only when the world's training cameras are known:

1. **Merging** (`merge_to`), in generations. Each generation links every Gaussian to its `NEIGHBOURS` nearest
   and prices each link by what merging the pair would cost the picture: the pair's visual importance (its
   blending weight summed over the training views, `select.importance`) times the information lost by
   replacing the two by one Gaussian, Runnalls' bound on that KL divergence,
   0.5 (log det S_merged - p log det S_a - q log det S_b), plus `COLOUR_WEIGHT` times the colour variance of the
   pair (every SH band). The cheapest disjoint pairs are merged, as the greedy matching in cost order would,
   by moment matching: mean, covariance and colour weighted by importance, opacity keeping the pair's
   opacity x area. At most `GENERATION` of the Gaussians merge in one generation, so that the dearer pairs
   are priced again after their neighbours have merged. Generations continue until `count` remain.
2. **Refining** (`refine`): Adam fits the merged world to the full world's renders at the training views for
   `steps` steps (L1 + 0.2 D-SSIM, as training). It needs no photos: the full world is the target.

Measured in one run of scripts/bench_formats.py (scripts/results/formats.txt), against the full world's render:
merged and refined, ahead of splat-transform's `--decimate` at 50, 25 and 10 % on the default scene and monstree,
over all views and over held-out ones; merged alone, ahead over all views, 0.15-0.19 dB behind on monstree's
held-out views at 25 and 10 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from spatial.splats import select
from spatial.transforms import quat_to_rotmat, rotmat_to_quat

NEIGHBOURS = 8  # candidate partners per Gaussian and generation
COLOUR_WEIGHT = 60.0  # colour variance (RGB 0-1, squared) against nats of shape information (measured)
GENERATION = 0.75  # share of the Gaussians that may merge per generation; the rest wait to be priced again
# (measured on the default scene and monstree: 0.5 and 1.0 lose up to 1.5 dB at some budget)
C0 = 0.28209479177387814  # degree-0 SH constant: colour = C0 * sh + 0.5
REFINE_STEPS = 200  # default refinement after merging (scripts/results/formats.txt)
TARGET_CACHE_BYTES = 512 * 2**20  # full-world renders kept between refinement steps; beyond it, rendered again


def simplify(params: dict[str, Tensor], count: int, cameras=None, refine_steps: int = REFINE_STEPS,
             background: Tensor | None = None, progress: Callable[[int, int], None] | None = None
             ) -> dict[str, Tensor]:
    """At most `count` Gaussians that render like `params` (see the module): merged, then refined on `cameras`
    (the training views) when there are cameras and `refine_steps` > 0."""
    N = params["means"].shape[0]
    if count >= N:
        return {k: v.detach().clone() for k, v in params.items()}
    merged = merge_to(params, count, select.importance(params, cameras))
    if cameras is None or refine_steps <= 0 or len(cameras) == 0:
        return merged
    return refine(merged, params, cameras, refine_steps, background, progress)


def simplify_shown(params: dict[str, Tensor], count: int, cameras=None, refine_steps: int = REFINE_STEPS,
                   background: Tensor | None = None, label: str = "") -> dict[str, Tensor]:
    """`simplify` under a progress bar (`spatial export --max-splats`, each level of a streamed SOG); a world
    without cameras is merged only."""
    from spatial.progress import progress_bar

    steps = refine_steps if cameras is not None else 0
    with progress_bar(f"{label}merge to {count:,}" + (" and refine" if steps else ""), max(steps, 1)) as advance:
        out = simplify(params, count, cameras, steps, background, advance)
        advance(max(steps, 1), max(steps, 1))
    return out


def merge_to(params: dict[str, Tensor], count: int, importance: Tensor) -> dict[str, Tensor]:
    """Merge pairs of neighbouring Gaussians until `count` remain, cheapest first (see the module);
    `importance [N]` weighs each Gaussian's share of the picture."""
    return merge_tracked(params, count, importance)[0]


def merge_tracked(params: dict[str, Tensor], count: int, importance: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """`merge_to`, and `[N]` the merged Gaussian each input Gaussian went into (-1: dropped, only when no pair
    had a finite cost), so that a selection of the inputs maps onto the result."""
    from scipy.spatial import cKDTree

    device, dtype = params["means"].device, params["means"].dtype
    p = {k: v.detach().cpu().double() for k, v in params.items()}
    N = p["means"].shape[0]
    mean = p["means"]  # [N, 3]
    R = quat_to_rotmat(torch.nn.functional.normalize(p["quats"], dim=-1))  # [N, 3, 3]
    s = torch.exp(p["scales"])  # [N, 3]
    cov = (R * (s**2)[:, None, :]) @ R.transpose(1, 2)  # [N, 3, 3]
    two = s.sort(-1).values[:, 1:]
    mass = torch.sigmoid(p["opacities"]) * two[:, 0] * two[:, 1]  # [N]: opacity x area of the two largest axes
    weight = importance.detach().cpu().double().clamp(min=0)  # [N]
    weight = weight + 1e-9 * float(weight.max().clamp(min=1e-30))  # never 0, so every pair has a weighted mean
    bands = p["shN"].shape[1]
    colour = torch.cat([p["sh0"], p["shN"]], 1).reshape(N, -1)  # [N, (1 + bands) * 3]
    owner = torch.arange(N, device="cpu")  # [N]: each input's Gaussian among the current ones
    while mean.shape[0] > count:
        n = mean.shape[0]
        k = min(NEIGHBOURS, n - 1)
        _, near = cKDTree(mean.numpy()).query(mean.numpy(), k=k + 1)
        a = torch.arange(n, device="cpu").repeat_interleave(k)  # [n k]
        b = torch.from_numpy(near[:, 1:]).reshape(-1).long()  # [n k]
        a, b = a[a != b], b[a != b]  # among Gaussians at one point, a Gaussian may be listed as its own neighbour
        link = torch.unique(torch.minimum(a, b) * n + torch.maximum(a, b))  # each pair once
        a, b = link // n, link % n
        cost = _merge_cost(mean, cov, colour, weight, a, b)
        take = min(n - count, max(1, int(GENERATION * n / 2)))
        a, b = _cheapest_disjoint_pairs(a, b, cost, n, take)
        if not len(a):  # no finite cost anywhere (degenerate shapes): keep the most important instead
            keep = weight.topk(count).indices
            mean, cov, colour, mass, weight = (x[keep] for x in (mean, cov, colour, mass, weight))
            moved = torch.full((n,), -1, dtype=torch.long, device="cpu")
            moved[keep] = torch.arange(count, device="cpu")
            owner = torch.where(owner >= 0, moved[owner.clamp(min=0)], -1)
            break
        rest = torch.ones(n, dtype=torch.bool, device="cpu")
        rest[a], rest[b] = False, False
        share = (weight[a] / (weight[a] + weight[b]))[:, None]  # [P, 1]: a's part of each pair
        merged = (*_moments(mean, cov, weight, a, b), share * colour[a] + (1 - share) * colour[b])
        mean, cov, colour = (torch.cat([x[rest], m]) for x, m in zip((mean, cov, colour), merged))
        mass = torch.cat([mass[rest], mass[a] + mass[b]])
        weight = torch.cat([weight[rest], weight[a] + weight[b]])
        moved = torch.empty(n, dtype=torch.long, device="cpu")  # old index -> new: the rest, then merged pairs
        kept = int(rest.sum())
        moved[rest] = torch.arange(kept, device="cpu")
        moved[a] = moved[b] = torch.arange(kept, kept + len(a), device="cpu")
        owner = moved[owner]
    variance, axes = torch.linalg.eigh(cov)  # ascending; columns are the axes
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=axes.dtype)
    axes = torch.where(torch.linalg.det(axes)[:, None, None] < 0, axes * flip, axes)
    scales = variance.clamp(min=1e-20).sqrt()  # [K, 3]
    opacity = (mass / (scales[:, 1] * scales[:, 2])).clamp(1e-4, 0.99)
    colour = colour.reshape(len(mean), 1 + bands, 3)
    out = {"means": mean, "quats": rotmat_to_quat(axes), "scales": scales.log(),
           "opacities": torch.log(opacity / (1 - opacity)), "sh0": colour[:, :1], "shN": colour[:, 1:]}
    return {k: v.to(device=device, dtype=dtype) for k, v in out.items()}, owner


def _moments(mean: Tensor, cov: Tensor, weight: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """The moment-matched Gaussian of each pair `a [P]`, `b [P]`: mean [P, 3] and covariance [P, 3, 3]."""
    p = (weight[a] / (weight[a] + weight[b]))[:, None]  # [P, 1]
    m = p * mean[a] + (1 - p) * mean[b]
    da, db = mean[a] - m, mean[b] - m
    c = p[..., None] * (cov[a] + da[:, :, None] * da[:, None, :]) + \
        (1 - p[..., None]) * (cov[b] + db[:, :, None] * db[:, None, :])
    return m, c


def _merge_cost(mean: Tensor, cov: Tensor, colour: Tensor, weight: Tensor, a: Tensor, b: Tensor,
                chunk: int = 1 << 20) -> Tensor:  # [E]
    """What merging each linked pair costs the picture (see the module), in chunks of links."""
    out = []
    for lo in range(0, len(a), chunk):
        i, j = a[lo:lo + chunk], b[lo:lo + chunk]
        _, merged = _moments(mean, cov, weight, i, j)
        p = weight[i] / (weight[i] + weight[j])
        shape = 0.5 * (_logdet(merged) - p * _logdet(cov[i]) - (1 - p) * _logdet(cov[j]))
        hue = p * (1 - p) * ((colour[i] - colour[j]) ** 2).sum(-1) * C0**2
        out.append((weight[i] + weight[j]) * (shape.clamp(min=0) + COLOUR_WEIGHT * hue))
    return torch.nan_to_num(torch.cat(out), nan=math.inf)


def _logdet(c: Tensor) -> Tensor:  # [E, 3, 3] -> [E]
    return torch.log(torch.linalg.det(c).clamp(min=1e-300))


def _cheapest_disjoint_pairs(a: Tensor, b: Tensor, cost: Tensor, n: int, take: int) -> tuple[Tensor, Tensor]:
    """The first `take` pairs the greedy matching in cost order picks, found a round at a time: a link that is
    the cheapest of both its ends among the free ones is in the greedy matching (ties broken by order)."""
    E = len(a)
    rank = torch.empty(E, dtype=torch.long)
    rank[torch.argsort(cost, stable=True)] = torch.arange(E)
    free = torch.ones(n, dtype=torch.bool)
    live = torch.arange(E)[torch.isfinite(cost)]
    chosen = []
    while len(live):
        live = live[free[a[live]] & free[b[live]]]
        best = torch.full((n,), E, dtype=torch.long)
        best.scatter_reduce_(0, a[live], rank[live], "amin")
        best.scatter_reduce_(0, b[live], rank[live], "amin")
        won = live[(best[a[live]] == rank[live]) & (best[b[live]] == rank[live])]
        if not len(won):
            break
        chosen.append(won)
        free[a[won]], free[b[won]] = False, False
    if not chosen:
        return a[:0], b[:0]
    won = torch.cat(chosen)
    won = won[torch.argsort(rank[won])][:take]
    return a[won], b[won]


def refine(small: dict[str, Tensor], full: dict[str, Tensor], cameras, steps: int, background: Tensor | None = None,
           progress: Callable[[int, int], None] | None = None, seed: int = 0) -> dict[str, Tensor]:
    """`small` after `steps` Adam steps fitting its render to `full`'s at `cameras` (one random view a step)."""
    from spatial.metrics import ssim
    from spatial.splats.model import render_splats
    from spatial.splats.step import LearningRates, StepConfig, make_optimizers

    device = small["means"].device
    background = background.to(device) if background is not None else None
    degree = math.isqrt(full["shN"].shape[1] + 1) - 1
    views = [cameras[i] for i in range(len(cameras))]
    centres = cameras.centers.double()  # [C, 3]
    scene_scale = 1.1 * max(float((centres - centres.mean(0)).norm(dim=-1).max()), 1e-6)  # as the trainer's
    weight = StepConfig.ssim_lambda  # the training loss: L1 and D-SSIM

    def draw(p, view):  # [1, H, W, 3]
        return render_splats(p, view.world_to_cam.to(device), view.K.to(device), int(view.width[0]),
                             int(view.height[0]), degree, background).rgb

    target = {k: v.detach() for k, v in full.items()}
    pixels = sum(int(v.width[0]) * int(v.height[0]) * 3 * 4 for v in views)
    cache: dict[int, Tensor] = {}
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.detach().clone()) for k, v in small.items()})
    optimizers = make_optimizers(params, LearningRates(), scene_scale)
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        i = int(torch.randint(len(views), (1,), generator=generator))
        with torch.no_grad():
            goal = cache.get(i)
            if goal is None:
                goal = draw(target, views[i])
                if pixels <= TARGET_CACHE_BYTES:
                    cache[i] = goal
        image = draw(params, views[i])
        loss = (1 - weight) * (image - goal).abs().mean() + weight * (1 - ssim(image, goal))
        loss.backward()
        for optimizer in optimizers.values():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if progress is not None:
            progress(step + 1, steps)
    return {k: v.detach() for k, v in params.items()}
