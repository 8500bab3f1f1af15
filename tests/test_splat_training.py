"""Training: the step function learns, strategies edit consistently, resume is exact, failures are clear."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from spatial import SpatialError, load_scene
from spatial.cli import main
from spatial.splats import ops
from spatial.splats.step import check_finite
from spatial.splats.strategies import DefaultStrategy, MCMCStrategy
from spatial.splats.strategies.mcmc import relocation
from spatial.splats.trainer import SplatTrainer
from spatial.training.run_folder import latest_checkpoint
from tests.helpers import appearance_config, small_config


def test_training_lowers_the_loss_and_raises_psnr(orbit_path, tmp_path):
    trainer = SplatTrainer(load_scene(orbit_path), small_config(60), tmp_path)
    before = trainer.evaluate()["psnr"]
    losses = [trainer.step()["loss"] for _ in range(60)]
    after = trainer.evaluate()
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
    assert after["psnr"] > before + 2
    assert json.loads((tmp_path / "eval.json").read_text())["psnr"] == after["psnr"]


def test_default_strategy_clones_splits_and_prunes(orbit_path, tmp_path):
    strategy = DefaultStrategy(refine_start=5, refine_every=5, refine_stop=100, reset_every=0, grow_grad2d=1e-6)
    trainer = SplatTrainer(load_scene(orbit_path), small_config(20, strategy), tmp_path)
    n0 = trainer.state.params["means"].shape[0]
    for _ in range(11):  # steps 0-10: the first refinement runs at step 10
        trainer.step()
    p = trainer.state.params
    assert p["means"].shape[0] > n0  # grew
    for name, opt in trainer.state.optimizers.items():  # Adam moments follow every edit
        assert opt.state[p[name]]["exp_avg"].shape == p[name].shape
    with torch.no_grad():
        p["opacities"][:10] = -20.0  # make ten Gaussians transparent: the next refinement prunes them
    n = p["means"].shape[0]
    strategy.grow_grad2d = 1e9
    while trainer.state.step % 5 != 0 or trainer.state.step <= 5:
        trainer.step()
    trainer.step()
    assert trainer.state.params["means"].shape[0] <= n - 10


def test_mcmc_relocates_dead_gaussians_and_respects_the_cap(orbit_path, tmp_path):
    strategy = MCMCStrategy(cap_max=1600, refine_start=2, refine_every=3, refine_stop=100)
    trainer = SplatTrainer(load_scene(orbit_path), small_config(20, strategy), tmp_path)
    with torch.no_grad():
        trainer.state.params["opacities"][:100] = -20.0
    for _ in range(10):
        trainer.step()
    p = trainer.state.params
    assert p["means"].shape[0] == 1600  # grew by 5% per refinement up to the cap
    assert (torch.sigmoid(p["opacities"]) > strategy.min_opacity).all()  # the dead were relocated


def test_mcmc_noise_moves_transparent_gaussians_and_leaves_visible_ones(tmp_path):
    from spatial.splats.model import init_splats
    from spatial.splats.strategies.base import StepInfo

    params = init_splats(torch.rand(200, 3), torch.rand(200, 3), 0, init_opacity=0.5)
    with torch.no_grad():
        params["opacities"][:100] = torch.logit(torch.tensor(0.001))  # dead
        params["opacities"][100:] = torch.logit(torch.linspace(0.1, 0.99, 100))  # seen, from faint to opaque
    before = params["means"].detach().clone()
    info = StepInfo(0, [], 1.0, 1.6e-4, torch.Generator().manual_seed(0))
    MCMCStrategy()._inject_noise(params, info)
    moved = (params["means"].detach() - before).norm(dim=-1)  # [200]
    assert (moved[:100] > 0).all()
    assert moved[100:].max() < 1e-3 * moved[:100].mean()  # gsplat's gate: the visible ones stay put


def test_relocation_preserves_the_rendered_opacity_profile():
    """Two copies of (o, s) must together equal the original Gaussian at its centre (MCMC eq. 9)."""
    o, s = torch.tensor([0.7]), torch.tensor([[0.2, 0.3, 0.1]])
    new_o, new_s = relocation(o, s, torch.tensor([1]))
    assert torch.allclose(new_o, o) and torch.allclose(new_s, s)  # one copy: unchanged
    new_o, _ = relocation(o, s, torch.tensor([2]))
    assert torch.allclose(1 - (1 - new_o) ** 2, o)  # two copies composite to the original opacity


@pytest.mark.parametrize("per_image_appearance", [False, True])
def test_resume_gives_the_same_result_as_an_uninterrupted_run(orbit_path, tmp_path, per_image_appearance):
    scene = load_scene(orbit_path)
    config = appearance_config(30) if per_image_appearance else small_config(30)
    straight = SplatTrainer(scene, config, tmp_path / "a")
    straight.train(30)
    first = SplatTrainer(scene, replace(config, checkpoint_every=15), tmp_path / "b")
    first.train(15)
    resumed = SplatTrainer(scene, config, tmp_path / "b")
    resumed.load_checkpoint(latest_checkpoint(tmp_path / "b"))
    assert resumed.state.step == 15
    resumed.train(30)
    for name in straight.state.params:
        assert torch.allclose(straight.state.params[name], resumed.state.params[name], atol=1e-6), name
    if per_image_appearance:  # the transforms moved, and came back from the checkpoint with their Adam state
        transforms = straight.state.appearance.transforms
        assert not torch.equal(transforms, torch.eye(3, 4).expand_as(transforms))
        assert torch.allclose(transforms, resumed.state.appearance.transforms, atol=1e-6)


def test_ctrl_c_saves_a_checkpoint(orbit_path, tmp_path):
    trainer = SplatTrainer(load_scene(orbit_path), small_config(50), tmp_path)

    def interrupt(stats):
        if trainer.state.step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.train(50, interrupt)
    assert latest_checkpoint(tmp_path).name == "step-000007.pt"


def test_nan_is_reported_with_the_step(orbit_path, tmp_path):
    trainer = SplatTrainer(load_scene(orbit_path), small_config(10), tmp_path)
    trainer.step()
    with torch.no_grad():
        trainer.state.params["scales"][3, 0] = float("nan")
    with pytest.raises(SpatialError, match="training diverged at step 1: scales of 1 Gaussians is NaN"):
        check_finite(trainer.state.params, trainer.state.step)
    # by then the NaN has reached other parameters of the same Gaussian through its gradient
    with pytest.raises(SpatialError, match=r"training diverged at step 10: \w+ of 1 Gaussians is NaN or infinite "
                                           r"\(first: Gaussian 3\)"):
        for _ in range(10):  # the trainer checks every CHECK_EVERY (10) steps: NaN Gaussians are culled silently
            trainer.step()
    assert trainer.state.step == 10


def test_scene_without_points_initialises_at_random(orbit_path, tmp_path):
    scene = load_scene(orbit_path)
    scene = replace(scene, points=torch.zeros(0, 3), point_colors=torch.zeros(0, 3, dtype=torch.uint8))
    trainer = SplatTrainer(scene, small_config(5, random_init_points=500), tmp_path)
    assert trainer.state.params["means"].shape[0] == 500
    trainer.step()


def test_scene_without_training_images_is_refused(orbit_path, tmp_path):
    scene = replace(load_scene(orbit_path), train_ids=[])
    with pytest.raises(SpatialError, match="no training images"):
        SplatTrainer(scene, small_config(5), tmp_path)


def test_ops_keep_and_append_keep_adam_in_step():
    params = torch.nn.ParameterDict({"means": torch.nn.Parameter(torch.randn(5, 3))})
    opt = {"means": torch.optim.Adam([params["means"]], lr=0.1)}
    params["means"].grad = torch.ones(5, 3)
    opt["means"].step()
    ops.keep(params, opt, torch.tensor([True, False, True, True, False]))
    ops.append(params, opt, {"means": torch.zeros(2, 3)})
    state = opt["means"].state[params["means"]]
    assert params["means"].shape == (5, 3) and state["exp_avg"].shape == (5, 3)
    assert (state["exp_avg"][3:] == 0).all() and (state["exp_avg"][:3] != 0).all()


@pytest.mark.parametrize("preset", ["default", "cpu", "mcmc"])
def test_every_preset_runs_two_steps_from_the_command_line(orbit_path, tmp_path, preset):
    out = tmp_path / preset
    main(["train", "splat", str(orbit_path), "--preset", preset, "--out", str(out), "--step.steps", "2"])
    assert (out / "splats.ply").is_file() and (out / "checkpoints" / "step-000002.pt").is_file()
    result = json.loads((out / "eval.json").read_text())
    assert result["step"] == 2 and result["psnr"] > 5 and result["lpips"] is None
    with pytest.raises(SystemExit):  # the run exists: a second start must not overwrite it
        main(["train", "splat", str(orbit_path), "--preset", preset, "--out", str(out), "--step.steps", "2"])
    main(["train", "splat", str(orbit_path), "--preset", preset, "--out", str(out), "--step.steps", "4", "--resume"])
    assert json.loads((out / "eval.json").read_text())["step"] == 4


def test_the_default_preset_keeps_the_paper_schedule():
    from spatial.configs.splat import PRESETS

    config = PRESETS["default"][1]
    assert config.step.steps == 30_000 and config.step.sh_degree == 3
    assert isinstance(config.strategy, DefaultStrategy) and config.strategy.reset_every == 3000
    assert Path(__file__).resolve().parents[1].joinpath("configs", "splat.py").is_file()


def test_train_seconds_count_the_steps_alone(orbit_path, tmp_path):
    """Not loading, not checkpoints, not a slow evaluation: eval.json's train_seconds is the steps' time."""
    import time

    trainer = SplatTrainer(load_scene(orbit_path), replace(small_config(12), checkpoint_every=4, eval_every=6),
                           tmp_path)
    step_times, step, render_view = [], trainer.step, trainer.render_view

    def timed_step():
        start = time.perf_counter()
        stats = step()
        step_times.append(time.perf_counter() - start)
        return stats

    def slow_render_view(index):
        time.sleep(0.2)
        return render_view(index)

    trainer.step, trainer.render_view = timed_step, slow_render_view
    trainer.train(12)
    result = trainer.evaluate()
    assert len(step_times) == 12 and result["eval_seconds"] >= 0.2 * len(trainer.scene.test_ids)
    assert abs(result["train_seconds"] - sum(step_times)) <= 0.05 * sum(step_times) + 0.05
    resumed = SplatTrainer(load_scene(orbit_path), small_config(12), tmp_path)
    resumed.load_checkpoint(latest_checkpoint(tmp_path))
    assert resumed.train_seconds == pytest.approx(trainer.train_seconds)  # the run's clock goes on from its checkpoint


@pytest.mark.parametrize(("size", "device", "factor"), [
    ((256, 192), "cpu", 1), ((720, 540), "cpu", 1), ((721, 540), "cpu", 2), ((1600, 1200), "cpu", 4),
    ((1080, 1920), "cpu", 4), ((4032, 3024), "cpu", 8), ((1600, 1200), "cuda", 1), ((1920, 1080), "cuda", 2),
])
def test_auto_downscale_brings_the_longest_side_within_the_devices_limit(size, device, factor):
    from types import SimpleNamespace

    from spatial.training.trainer import auto_downscale

    cameras = SimpleNamespace(width=torch.tensor([size[0], 64]), height=torch.tensor([size[1], 48]))
    assert auto_downscale(SimpleNamespace(cameras=cameras), torch.device(device)) == factor


def test_auto_downscale_is_recorded_said_and_kept_on_resume(orbit_path, tmp_path, capsys, monkeypatch):
    """The CLI's default trains a CPU run on images within AUTO_SIDE (made 32 px here, so the 64x48 test scene
    halves), says so, records the factor it chose, and resumes at it without a changed-settings warning."""
    import shutil

    from spatial.training.trainer import AUTO_SIDE

    monkeypatch.setitem(AUTO_SIDE, "cpu", 32)
    orbit_path = Path(shutil.copytree(orbit_path, tmp_path / "scene"))  # images_2 is written beside the images
    out = tmp_path / "run"
    main(["train", "splat", str(orbit_path), "--preset", "cpu", "--out", str(out), "--step.steps", "2"])
    said = capsys.readouterr().out
    assert "note: training on images downscaled by 2 (32x24, from 64x48): --downscale 1 trains at full size, on " \
           "4x the pixels per step" in " ".join(said.split())
    assert json.loads((out / "config.json").read_text())["config"]["downscale"] == 2
    assert (orbit_path / "images_2").is_dir()
    main(["train", "splat", str(orbit_path), "--preset", "cpu", "--out", str(out), "--step.steps", "4", "--resume"])
    said = " ".join(capsys.readouterr().out.split())
    assert "differ from the run's: step.steps 4 (the run had 2). Pass" in said  # the steps alone, not downscale
    assert json.loads((out / "eval.json").read_text())["step"] == 4
    main(["train", "splat", str(orbit_path), "--preset", "cpu", "--out", str(tmp_path / "full"), "--step.steps", "1",
          "--downscale", "1"])
    assert "downscaled" not in capsys.readouterr().out
    assert json.loads((tmp_path / "full" / "config.json").read_text())["config"]["downscale"] == 1


def test_a_downscale_below_one_is_refused(orbit_path, tmp_path):
    with pytest.raises(SpatialError, match=r"^--downscale 0: must be 1 \(full size\) or more$"):
        SplatTrainer(load_scene(orbit_path), replace(small_config(1), downscale=0), tmp_path)


def test_an_unwritable_downscale_cache_is_one_line_that_says_what_to_do(orbit_path, tmp_path, monkeypatch):
    import spatial.scene

    def refuse(source, target, size):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(spatial.scene, "downscaled_image", refuse)
    message = (f"{orbit_path / 'images_2'}: cannot write the images downscaled by 2 there (Permission denied); "
               "make the scene folder writable or copy it, or train at full size with --downscale 1")
    with pytest.raises(SpatialError) as error:
        SplatTrainer(load_scene(orbit_path), replace(small_config(1), downscale=2), tmp_path)
    assert str(error.value) == message
