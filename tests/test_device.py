"""Device discipline, proven without a GPU: every tensor that meets model data is made on its device.

A trainer is built normally on the CPU, then stepped with `torch.device("meta")` as the default
device. A factory that forgets `device=` (`torch.zeros(n)`, `torch.tensor([...])`, `torch.randn(...,
generator=...)`) then makes a meta tensor, and the first operation that mixes it with the real CPU
data raises, exactly where the same call would have put a CPU tensor beside CUDA data on a GPU.
Each method and preset is stepped far enough to cross the branches that run only sometimes:
densification (clone, split, prune, opacity reset), MCMC relocation, growth and noise, the SH degree
rising, the divergence check, evaluation, checkpoint and resume, the live view's snapshot, and the
NeRF's bfloat16 autocast (a CUDA default, forced on here).
"""

from __future__ import annotations

import copy
import inspect
import shutil
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from spatial import SpatialError, load_scene
from spatial.configs.nerf import PRESETS as NERF_PRESETS
from spatial.configs.splat import PRESETS as SPLAT_PRESETS
from spatial.nerf.trainer import NerfTrainer
from spatial.splats import ops
from spatial.splats.strategies import DefaultStrategy, MCMCStrategy
from spatial.splats.trainer import SplatTrainer
from spatial.training.run_folder import latest_checkpoint


@pytest.fixture(scope="module")
def small_scenes(orbit_path, facade_path, tmp_path_factory):
    """The test scenes at 1/4 size, in a copy: downscaling writes images_4/ beside the images."""
    root = tmp_path_factory.mktemp("scenes")
    return {name: load_scene(Path(shutil.copytree(path, root / name))).downscaled(4)
            for name, path in (("orbit", orbit_path), ("facade", facade_path))}


@contextmanager
def factories_default_to_meta():
    """Any tensor made without a device in this block lands on 'meta', where mixing it with data fails."""
    with torch.device("meta"):
        yield


def test_the_check_catches_a_factory_without_a_device():
    data = torch.ones(4)
    with factories_default_to_meta(), pytest.raises((RuntimeError, NotImplementedError)):
        _ = data * torch.tensor([1.0, 2.0, 3.0, 4.0])  # the mistake this file looks for
    with factories_default_to_meta():  # and not the right way to write it
        fixed = data * torch.tensor([1.0, 2.0, 3.0, 4.0], device=data.device)
        assert torch.equal(fixed, torch.arange(1.0, 5.0, device="cpu"))


class Spy:
    """Counts calls of functions on an object (monkeypatched), to show a branch really ran."""

    def __init__(self, monkeypatch, owner, *names):
        self.calls = dict.fromkeys(names, 0)
        for name in names:
            original = getattr(owner, name)

            def wrapper(*args, _name=name, _original=original, **kwargs):
                self.calls[_name] += 1
                return _original(*args, **kwargs)

            static = isinstance(inspect.getattr_static(owner, name), staticmethod)
            monkeypatch.setattr(owner, name, staticmethod(wrapper) if static else wrapper)


def splat_config(preset: str):
    """The preset's own settings, with its schedule squeezed into 24 steps so every branch is reached
    (`NAME+absgrad`: the preset growing by AbsGS's statistic)."""
    preset, _, option = preset.partition("+")
    config = copy.deepcopy(SPLAT_PRESETS[preset][1])
    if option == "absgrad":
        config.strategy.absgrad = True
    config.step.steps, config.step.sh_degree_interval, config.checkpoint_every = 24, 6, 0
    config.random_background = preset != "cpu"  # the orbit scene has alpha: one preset draws backgrounds
    config.coarse_until = min(config.coarse_until, 12)  # a coarse-to-fine preset reaches its full-size steps
    s = config.strategy
    s.refine_start, s.refine_every, s.refine_stop = 3, 4, 22
    if isinstance(s, DefaultStrategy):
        s.reset_every, s.grow_grad2d = 8, 1e-9  # everything grows: small ones clone, large ones split
        s.grow_scale3d = 0.002
    else:
        s.cap_max = 3000
    return config


@pytest.mark.parametrize("preset", [*sorted(SPLAT_PRESETS), "cpu+absgrad"])
def test_splat_training_makes_every_tensor_on_the_parameters_device(preset, orbit_path, tmp_path, monkeypatch):
    scene = load_scene(orbit_path)
    config = splat_config(preset)
    if config.step.appearance.exposure:  # photos of several exposures, so their gains are used
        scene = replace(scene, exposures=torch.linspace(0.5, 2.0, len(scene.image_names), dtype=torch.float64))
    trainer = SplatTrainer(scene, config, tmp_path / "run")
    assert (trainer.gains is not None) == config.step.appearance.exposure
    ops_spy = Spy(monkeypatch, ops, "keep", "append", "set_rows", "edit")
    strategy_spy = Spy(monkeypatch, type(config.strategy), *(
        ("_split",) if isinstance(config.strategy, DefaultStrategy) else ("_relocate", "_add", "_inject_noise")))
    with torch.no_grad():  # a few dead Gaussians, for pruning and MCMC relocation
        trainer.state.params["opacities"][:20] = -12.0
    with factories_default_to_meta():
        for _ in range(12):
            trainer.step()
        trainer.save_checkpoint()
    resumed = SplatTrainer(scene, config, tmp_path / "run")  # built normally, like the trainer above
    with factories_default_to_meta():
        resumed.load_checkpoint(latest_checkpoint(tmp_path / "run"))
        stats = [resumed.step() for _ in range(12)]
        result = resumed.evaluate()
        snapshot = resumed.snapshot()
        frame = next(snapshot.render_frames(scene.cameras[0]))
    assert resumed.step_count == 24 and stats[-1]["sh_degree"] == config.step.sh_degree
    assert torch.isfinite(torch.stack([s["loss"] for s in stats])).all() and result["psnr"] > 5
    assert frame.rgb.device.type == "cpu" and frame.rgb.shape[-1] == 3
    assert ops_spy.calls["append"]  # grew under the check
    if isinstance(config.strategy, DefaultStrategy):
        assert ops_spy.calls["keep"] and strategy_spy.calls["_split"]  # pruned and split
        assert ops_spy.calls["edit"] > ops_spy.calls["keep"] + ops_spy.calls["append"]  # and reset opacities
    else:
        assert isinstance(config.strategy, MCMCStrategy) and ops_spy.calls["set_rows"]
        assert strategy_spy.calls["_relocate"] and strategy_spy.calls["_add"] and strategy_spy.calls["_inject_noise"]
    for value in resumed.state.strategy_state.values():
        assert value.device == resumed.state.params["means"].device


def nerf_config(preset: str, steps: int = 12):
    config = copy.deepcopy(NERF_PRESETS[preset][1])
    config.steps, config.checkpoint_every = steps, 0
    config.rays_per_batch, config.eval_chunk = 64, 4096  # the preset's fields and samplers, fewer rays
    config.model.anneal_steps = 6
    return config


@pytest.mark.parametrize("preset", sorted(NERF_PRESETS))
@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bfloat16"])
def test_nerf_training_makes_every_tensor_on_the_models_device(preset, autocast, small_scenes, tmp_path):
    scene = small_scenes["orbit"]  # evaluation renders whole images: keep them small
    config = nerf_config(preset)
    trainer = NerfTrainer(scene, config, tmp_path / "run")
    trainer.autocast = autocast  # on CUDA by default; forced here so its dtypes meet the CPU first
    with factories_default_to_meta():
        first = [trainer.step() for _ in range(6)]
        trainer.save_checkpoint()
    resumed = NerfTrainer(scene, config, tmp_path / "run")
    resumed.autocast = autocast
    with factories_default_to_meta():
        resumed.load_checkpoint(latest_checkpoint(tmp_path / "run"))
        second = [resumed.step() for _ in range(6)]
        result = resumed.evaluate(ids=scene.test_ids[:1])
        frame = next(resumed.snapshot().render_frames(scene.cameras[0]))
    losses = torch.stack([s["loss"] for s in first + second])
    assert torch.isfinite(losses).all() and losses.dtype == torch.float32
    assert result["step"] == 12 and result["psnr"] > 3
    assert frame.rgb.dtype == torch.float32 and frame.depth.shape[:3] == frame.rgb.shape[:3]


def test_the_nerf_depth_prior_makes_every_tensor_on_the_models_device(small_scenes, tmp_path):
    config = nerf_config("capture")
    config.losses.depth = config.losses.free = config.losses.unseen = config.losses.lone = 0.05
    trainer = NerfTrainer(small_scenes["facade"], config, tmp_path / "run")
    assert trainer.depth_points is not None and trainer.depth_points.distance.device == trainer.device
    assert trainer.free_distance.device == trainer.device and trainer.unseen_cells.device == trainer.device
    assert trainer.sight.hidden.device == trainer.device and trainer.sight.tile_size.device == trainer.device
    with factories_default_to_meta():
        losses = torch.stack([trainer.step()["loss"] for _ in range(3)])
    assert torch.isfinite(losses).all()


def test_an_unbounded_nerf_and_its_meshes_make_tensors_on_the_models_device(small_scenes, tmp_path):
    from spatial.mesh import mesh_from_depth
    from spatial.mesh.fusion import FusionConfig
    from spatial.nerf.mesh import DensityMeshConfig, density_mesh

    scene = small_scenes["facade"]
    trainer = NerfTrainer(scene, nerf_config("tiny"), tmp_path / "run")
    assert not trainer.space.bounded
    with factories_default_to_meta():
        for _ in range(3):
            trainer.step()
        model = trainer.snapshot()
        cameras = scene.cameras[:2]
        # an untrained field may hold no surface: that SpatialError is fine, a device error is not
        try:
            density_mesh(model.model, DensityMeshConfig(resolution=12, threshold=1e-6))
        except SpatialError as e:
            assert "no surface" in str(e)
        try:
            mesh_from_depth(model.render_frames(cameras), cameras, FusionConfig(resolution=16, min_alpha=0.0))
        except SpatialError as e:
            assert "no surface" in str(e) or "nothing to fuse" in str(e)


# ---- the CUDA-only branches, reached on the CPU --------------------------------------------------
def test_cuda_tensors_fall_back_to_the_torch_rasterizer_with_the_reason_when_gsplat_cannot_run():
    from spatial.render import RenderOptions, backend_for
    from spatial.render.gsplat_backend import gsplat_problem

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the fallback is for machines without a usable gsplat")
    assert gsplat_problem() == "there is no CUDA device"  # and gsplat is never imported to find that out
    with pytest.warns(UserWarning, match="portable torch rasterizer: there is no CUDA device"):
        assert backend_for(torch.device("cuda"), RenderOptions()) == "torch"
    assert backend_for(torch.device("cuda"), RenderOptions(backend="gsplat")) == "gsplat"  # asked for by name


def test_asking_for_gsplat_where_it_cannot_run_is_a_clear_error():
    from spatial.render import RenderOptions, rasterize
    from tests.helpers import camera, random_gaussians

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    means, quats, scales, opacities, rgb = random_gaussians(10)
    w2c, K = camera(32, 24)
    with pytest.raises(SpatialError, match="the gsplat rasterizer cannot run: there is no CUDA device; choose "
                                           "another with --step.render.backend torch"):
        rasterize(means, quats, scales, opacities, rgb, w2c, K, 32, 24,
                  options=RenderOptions(sh_degree=None, backend="gsplat"))


def test_devices_auto_and_named(monkeypatch):
    from spatial.device import pick_device
    from spatial.training.methods import get_method

    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(SpatialError, match="unknown device 'gpu': use auto, cpu, cuda or cuda:N"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(SpatialError, match="device 'cuda:1': torch sees no CUDA GPU on this machine"):
            pick_device("cuda:1")
        assert pick_device("auto") == torch.device("cpu")
        assert get_method("splat").preset_config("auto").step.steps == SPLAT_PRESETS["cpu"][1].step.steps
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # what a GPU machine answers
    assert pick_device("auto") == torch.device("cuda")
    assert get_method("splat").preset_config("auto").step.steps == 30_000
    assert get_method("nerf").preset_config("auto").steps == NERF_PRESETS["default"][1].steps
