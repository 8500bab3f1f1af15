"""Host synchronisations: what spatial.host_syncs counts, and an ordinary training step of every preset of both
methods held to its budget on the CPU, so a change that would make a GPU wait every step fails here, without a GPU.

Budgets, per ordinary step (not a multiple of CHECK_EVERY, whose divergence check reads the loss; not a
densification step, which decides on the host what to grow and prune):
- splats on the torch rasterizer: 1, the copy of the tile counts that sizes the intersection lists;
- splats on gsplat: 0 of ours (gsplat's tile intersection reads its count once more, inside gsplat);
- NeRF: 0.
Before these budgets the counter found 17-19 per splat step (tile binning and chunk planning, tensors made from
Python numbers in the projection, the compositing and the densification statistics, list indexing of the cameras)
and 32-48 per NeRF step (the corner offsets of every hash level, Adam's step counts); the H200 counted 25 and 26.
"""

from __future__ import annotations

import copy

import pytest
import torch

from spatial import load_scene
from spatial.configs.nerf import PRESETS as NERF_PRESETS
from spatial.configs.splat import PRESETS as SPLAT_PRESETS
from spatial.host_syncs import HostSyncs, host_only
from spatial.nerf.trainer import NerfTrainer
from spatial.render import BACKENDS
from spatial.render.torch_backend import rasterize_torch
from spatial.splats.step import CHECK_EVERY
from spatial.splats.trainer import SplatTrainer

SPLAT_BUDGET = {"torch": 1, "gsplat": 0}
NERF_BUDGET = 0


def counted(fn) -> HostSyncs:
    with HostSyncs() as syncs:
        fn()
    return syncs


@pytest.mark.parametrize("kind, fn", [
    ("scalar read", lambda x: x.sum().item()),
    ("scalar read", lambda x: bool(x[0] > 0)),
    ("scalar read", lambda x: f"{x.sum():.2f}"),
    ("scalar read", lambda x: torch.equal(x, x)),
    ("data-dependent shape (nonzero)", lambda x: torch.nonzero(x > 0)),
    ("data-dependent shape (nonzero)", lambda x: torch.where(x > 0)),
    ("data-dependent shape (boolean index)", lambda x: x[x > 0]),
    ("data-dependent shape (boolean index)", lambda x: x.clone().__setitem__(x > 0, 1.0)),
    ("data-dependent shape (repeat_interleave without output_size)",
     lambda x: torch.repeat_interleave(torch.arange(4), torch.ones(4, dtype=torch.long))),
    ("data-dependent shape (bincount)", lambda x: torch.bincount(torch.zeros(3, dtype=torch.long), minlength=5)),
    ("data-dependent shape (_unique2)", lambda x: torch.unique(x)),
    ("tensor from host data", lambda x: torch.tensor([1.0, 2.0], device=x.device)),
    ("tensor from host data", lambda x: x.new_tensor([1.0, 2.0])),
    ("tensor from host data", lambda x: x[[0, 2]]),
    ("device to host (tolist)", lambda x: x.tolist()),
    ("device to host (cpu)", lambda x: x.cpu()),
    ("device to host (numpy)", lambda x: x.detach().numpy()),
    ("device to host (to)", lambda x: x.to("cpu")),
])
def test_it_counts_each_kind_of_wait(kind, fn):
    x = torch.randn(8)
    syncs = counted(lambda: fn(x))
    assert syncs.total == 1 and syncs.kinds[kind] == 1, syncs.where
    assert "tests/test_host_syncs.py:" in syncs.where[0][1]  # where it happened


@pytest.mark.parametrize("fn", [
    lambda x: x * 2 + x.exp(),
    lambda x: torch.repeat_interleave(torch.arange(4), torch.ones(4, dtype=torch.long), output_size=4),
    lambda x: x[torch.argsort(x)[:3]],  # indexing with a device index tensor
    lambda x: torch.where(x > 0, x, torch.zeros_like(x)),
    lambda x: x[2:5].sum(),
    lambda x: torch.eye(4, device=x.device).expand(2, 4, 4).clone(),
    lambda x: x.clone().__setitem__((Ellipsis, 3), 1.0),  # a number assigned in place: a fill on a GPU
])
def test_it_leaves_device_work_alone(fn):
    x = torch.randn(8)
    assert counted(lambda: fn(x)).total == 0


def test_host_only_blocks_are_left_out_and_the_counter_nests():
    x = torch.randn(8)

    def work():
        x.sum().item()
        with host_only():
            x.tolist()
            x.sum().item()
        x.tolist()

    with HostSyncs() as outer:
        inner = counted(work)
    assert inner.total == 2 and outer.total == 2
    with HostSyncs() as outer:
        with host_only():
            inside = counted(lambda: x.tolist())  # a counter opened in the block counts what it holds
        x.tolist()
    assert inside.total == 1 and outer.total == 1


def ordinary_steps(trainer, count: int = 3) -> list[HostSyncs]:
    """The host syncs of `count` ordinary steps (the first steps that are not multiples of CHECK_EVERY, before
    densification starts at every preset's refine_start)."""
    results = []
    while len(results) < count:
        if trainer.step_count % CHECK_EVERY == 0:
            trainer.step()
            continue
        results.append(counted(trainer.step))
    return results


def uncounted_torch_rasterizer(*args):
    """Stands in for gsplat's kernels, whose own waits are gsplat's: the torch rasterizer, left out of the count."""
    with host_only():
        return rasterize_torch(*args)


@pytest.mark.parametrize("path", ["torch", "gsplat"])
@pytest.mark.parametrize("preset", list(SPLAT_PRESETS))
def test_an_ordinary_splat_step_keeps_to_its_budget(preset, path, orbit_path, tmp_path, monkeypatch):
    config = copy.deepcopy(SPLAT_PRESETS[preset][1])
    config.device, config.checkpoint_every = "cpu", 0
    config.step.render.backend = path
    if path == "gsplat":
        monkeypatch.setitem(BACKENDS, "gsplat", (__name__, "uncounted_torch_rasterizer"))
    trainer = SplatTrainer(load_scene(orbit_path), config, tmp_path)
    for syncs in ordinary_steps(trainer, 2):
        assert syncs.total <= SPLAT_BUDGET[path], f"step {trainer.step_count - 1}:\n{syncs.report()}"


@pytest.mark.parametrize("preset", list(NERF_PRESETS) + ["capture+depth", "capture+free", "video+unseen",
                                                        "video+lone"])
def test_an_ordinary_nerf_step_keeps_to_its_budget(preset, facade_path, tmp_path):
    config = copy.deepcopy(NERF_PRESETS[preset.split("+")[0]][1])
    config.device, config.checkpoint_every = "cpu", 0
    config.rays_per_batch = 64  # the budget does not depend on the batch: a small one keeps nerfacto's sizes quick
    config.losses.depth = 0.05 if preset.endswith("+depth") else config.losses.depth  # the sparse points' rays
    config.losses.free = 0.05 if preset.endswith("+free") else config.losses.free  # their free space
    config.losses.unseen = 0.01 if preset.endswith("+unseen") else config.losses.unseen  # space no photo sees
    config.losses.lone = 0.01 if preset.endswith("+lone") else config.losses.lone  # rays' weight one photo sees
    trainer = NerfTrainer(load_scene(facade_path), config, tmp_path)
    assert (trainer.depth_points is not None) == preset.endswith("+depth")
    for syncs in ordinary_steps(trainer, 2):
        assert syncs.total <= NERF_BUDGET, f"step {trainer.step_count - 1}:\n{syncs.report()}"


def test_a_check_step_says_it_waits(orbit_path, tmp_path):
    """The every-CHECK_EVERY divergence check is the step that may read the device: it is counted, not hidden."""
    config = copy.deepcopy(SPLAT_PRESETS["cpu"][1])
    config.device, config.checkpoint_every = "cpu", 0
    config.step.render.backend = "torch"
    trainer = SplatTrainer(load_scene(orbit_path), config, tmp_path)
    syncs = counted(trainer.step)  # step 0
    assert syncs.total > SPLAT_BUDGET["torch"]
    assert any("check_finite" in place or "step.py" in place for _, place in syncs.where), syncs.report()
