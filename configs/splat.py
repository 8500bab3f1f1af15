"""Presets for `spatial train splat --preset NAME`.

default: the 3DGS paper's schedule (30k steps), for a GPU.
cpu: sized for a laptop or CI CPU: fewer steps, densification compressed into them, SH degree 1.
mcmc: the default schedule with the MCMC strategy (capped at 1M Gaussians).
capture: the cpu preset for real photos (what `--preset auto` picks on a CPU for photos that `spatial process` made
    into a scene): each photo rendered at the exposure its camera recorded (EXIF, where the scene has it), the rest
    of its exposure and white balance learned apart from the splats, the first 700 of its 2000 steps on half-size
    images, SH degree 0. Measured by scripts/bench_real_captures.py (scripts/results/). A video's frames record no
    exposure, and there `cpu` scores higher: auto picks it for them.
capture-gpu: real photos on a GPU (what `--preset auto` picks with CUDA for photos that `spatial process` made into
    a scene): the same recorded and learned exposure, and a shorter schedule than the paper's (7k steps, densified
    until 5k), since twenty-odd phone photos are over-fitted long before 30k. Anti-aliasing is left out until a GPU
    run measures it: right after an opacity reset it dims small Gaussians (tests/test_device.py's short schedule
    scores 4.8 dB with it, 5.4 dB without).
"""

from spatial.splats.appearance import AppearanceConfig
from spatial.splats.step import StepConfig
from spatial.splats.strategies import DefaultStrategy, MCMCStrategy
from spatial.splats.trainer import SplatTrainConfig

PRESETS: dict[str, tuple[str, SplatTrainConfig]] = {
    "default": ("3DGS paper schedule, 30k steps (GPU)", SplatTrainConfig()),
    "cpu": (
        "2k steps, densify every 100 from step 200, SH degree 1 (CPU)",
        SplatTrainConfig(
            step=StepConfig(steps=2000, sh_degree=1, sh_degree_interval=500),
            strategy=DefaultStrategy(refine_start=200, refine_stop=1500, refine_every=100, reset_every=0,
                                     grow_grad2d=0.0002),
            checkpoint_every=500,
        ),
    ),
    "capture": (
        "photos on a CPU: recorded and learned per-photo exposure, 2k steps, the first 700 at half size, SH 0",
        SplatTrainConfig(
            step=StepConfig(steps=2000, sh_degree=0, appearance=AppearanceConfig(per_image=True, exposure=True)),
            strategy=DefaultStrategy(refine_start=200, refine_stop=1500, refine_every=100, reset_every=0,
                                     grow_grad2d=0.0002),
            coarse_until=700,
            checkpoint_every=500,
        ),
    ),
    "capture-gpu": (
        "photos on a GPU: recorded and learned per-photo exposure, 7k steps densified until 5k, SH 3",
        SplatTrainConfig(
            step=StepConfig(steps=7000, appearance=AppearanceConfig(per_image=True, exposure=True)),
            strategy=DefaultStrategy(refine_stop=5000),
        ),
    ),
    "mcmc": ("3DGS as MCMC, 30k steps, up to 1M Gaussians (GPU)", SplatTrainConfig(strategy=MCMCStrategy())),
}
