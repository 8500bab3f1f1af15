"""Presets for `spatial train nerf --preset NAME`.

default: nerfacto's settings (hash grids of 2^19 rows, 4096 rays, 256/96 proposal and 48 field samples), for a GPU.
cpu: sized for a 2-core CPU (about 2 minutes on the default scene): smaller grids, fewer samples and rays, and no
    per-image appearance (as the splats' cpu preset: a held-out view's appearance is unknown). 24 field samples a
    ray: on the default scene (scripts/bench_nerf_vs_splat.py, 2 cores) 16 scored 30.27 dB in 79 s, 24 scored
    31.38 dB in 109 and 119 s (two runs; the splats' cpu preset 31.87 dB in 135 and 170 s beside them: steps of
    this machine vary that much in time from one run to the next).
tiny: the smallest useful model, for smoke tests and quick checks.
video: for a video's frames that `spatial process` made into a scene (what `--preset auto` picks for them on a CPU):
    the cpu preset with a finer grid (2048 cells, 2^19 rows), trained four times as long (8000 steps), about 8
    minutes. A real capture has detail that the cpu grid blurs: on the phone-style facade video, 33.16 dB held out
    after 4000 steps (scripts/results/real_captures_nerf.txt, an earlier run) against 29.72 dB with the cpu preset's
    grid in 148 s (a separate run). Single runs of the facade video at 1/2 size on 2 cores
    (scripts/bench_real_captures.py's training): with 16 field samples, 33.79 dB after 6000 steps (the figure of
    the recorded run at ceefbb7; 433 s since the faster step), 34.12 after 8000, 34.13 after 10000: more steps no
    longer helped; with 24, 37.20 dB (SSIM 0.971, 36.40 at 300 s) after 8000 steps in 461 s in the
    benchmark's recorded run (scripts/results/real_captures.txt; the splats 36.32 dB over two seeds beside it, 516 s
    in a single run): 16 samples a ray were too few to draw the surfaces the proposals find. Earlier, before the
    step got faster: the finest grid at 4096 cells, 33.70 dB (nothing gained); with the learning rate decayed to
    1e-4 instead of 1e-3, 4000 steps came sooner to the same 32.66 dB.
capture: the video preset for real photos (what `--preset auto` picks on a CPU for photos that `spatial process`
    made into a scene), with a per-image appearance embedding, each photo rendered at the exposure its camera
    recorded (EXIF, where the scene has it), and the sparse points' free space (--losses.free 0.05, spatial/nerf/
    depth_prior.py: no weight nearer a training camera than half its photo's nearest points), and the space fewer
    than two photos see kept empty (--losses.unseen 0.01 and --losses.lone 0.01, below); 6000 steps (its step is
    slower than the video preset's: 8000 would pass 600 s). With 24 field samples (the cpu preset's), in the benchmark's
    recorded run (scripts/results/real_captures.txt) at 1/4 size on 2 cores: monstree 21.87 dB (SSIM 0.742) in
    461 s, sceaux_castle 14.20 dB (SSIM 0.631) in 405 s, and sharper (the splats 21.51 and 14.88 dB over two seeds
    beside them), where 16 samples scored 20.79 and 13.59 dB in the recorded run below (splats 21.32 and 14.50).
    With 16, measured by scripts/bench_real_captures.py: in its recorded run at ceefbb7
    monstree 20.79 dB in 600 s, 5966 steps (splats 21.32) and sceaux_castle 13.59 dB in 600 s, 5292 steps (splats
    14.50), its left wing drawn; in the run before, with one photo's sight enough, 20.72 dB in 580 s and 13.14 dB in
    521 s (streaks over the wing); without the unseen space, 20.79 dB in 453 s and 13.04 dB in 482 s. Without the
    free space, in the recorded run before (07a4839) this preset scored 20.65 dB on monstree (splats 21.28) and 9.75
    dB on sceaux_castle (splats 13.61), whose render of the first held-out photo was white fog, and whose held-out
    PSNR fell as it trained (11.31 dB at 120 s, 10.14 at 300 s): nine training photos over-fitted. With it, single
    runs at 1/4 size, 4000 steps: sceaux 12.92 dB (12.86 at 1333 and at 2666 steps), monstree 20.54 dB (SSIM 0.666);
    at 2000 steps sceaux scored 12.93 and 12.91 dB with two seeds; at 6000 steps (the video preset's since the fused
    Adam), sceaux 13.24 dB (12.88 at 2000, 12.97 at 4000), monstree 20.79 dB (SSIM 0.693) in 474 s.
    Tried on sceaux and not kept, single runs at 1/4 size, 2000 steps unless said, held-out PSNR (off: 9.9-10.9 dB):
      the depth prior (--losses.depth, its rays at the points; BAND the share of a point's distance taken as its
        surface): 3% band, 0.05: 13.46 and 11.44 dB with two seeds, 10.52 over 4000 steps (12.68 at 1333); 0.2:
        12.12 dB; monstree 19.65 dB (off 20.26). 10% band: sceaux 11.24 dB, monstree 18.40 (its bark blurred and
        grey). Without tracks (a point kept where none projects much nearer) sceaux 12.10 dB, monstree 16.9 dB at
        120 s. Only its rays' weight in front of the band (10%): monstree 14.17 dB;
      FreeNeRF's coarse-to-fine schedule (the finer hash levels opened over 1500 steps): 10.38 dB;
      light from beyond the far plane by direction (a small MLP of the view direction): 10.81 dB;
      the colour's view direction in degree-1 harmonics: 10.05 dB at 666 steps.
    And the space no training photo sees kept empty (--losses.unseen 0.01, spatial/nerf/unseen.py): sceaux's first
    held-out photo (100_7100, the end of the walk) rendered a white-green haze over its left third, 66% of that
    third's pixels nearer than 5 units (the castle at about 11), in space outside every training view. Single runs
    at 1/4 size, 3000 steps: without it 12.65 dB; with it (a 128^3 grid) 13.00 dB (100_7100 7.51 dB, 100_7108 18.50),
    4% of that third nearer than 5 units; with a 64^3 grid grown by a cell, 12.41 dB at 0.01 and 12.52 at 0.1, 28-32%
    (the haze lay within a cell of a view's edge). Since that recorded run: 1024 points a step instead of 4096,
    13.17 dB (100_7100 7.62, 100_7108 18.72); space hidden behind the photos' sparse points counted as unseen,
    13.47 dB (7.91, 19.03); each drawn point tested exactly instead of by its cell's corners, 13.54 dB (8.06, 19.01),
    3% of that third nearer than 5 units; monstree with it, 6000 steps, 20.86 dB (the recorded run's 4096 points
    20.72, without the loss 20.79). Tried and not kept there: the sky's free distance per tile of a photo
    where it sees no points around (its median point), 12.42 dB; points also drawn along random rays from the
    training cameras, 13.32 dB; with those, a free distance per tile of each photo, 80% or 60% of the way to its
    nearest point around, which drew the castle's left wing but blurred the rest (12.27 and 12.35 dB, SSIM 0.43
    against 0.56; 100_7108 17.3 dB). Space fewer than two photos see counted as unseen (one photo alone cannot
    place a surface): 13.98 dB (7.95, 20.00), the left wing still streaked; with the rays' weight there pushed out
    too (--losses.lone 0.01, spatial/nerf/unseen.py), 13.28 dB (7.80, 18.76) and the wing drawn where the splats
    draw it; 0.05 blurred the facade (13.46 dB, SSIM 0.49). Monstree with both, 6000 steps: 20.90 dB (SSIM 0.704).
    A held-out photo is rendered with the training photos' mean embedding at its recorded gain. Tried and not kept:
    the point at its exposure on the embeddings' least-squares line over log exposure (what the splats' transforms
    take, spatial/splats/appearance.py): sceaux 13.45 dB against 13.28 at 3000 steps, monstree 20.11 against 20.90
    at 6000 (IMG_1025 17.32 against 18.81): through the colour MLP, a line in the embedding is no line in colour.
capture-gpu: the default preset with the same recorded exposure (what `--preset auto` picks with CUDA for photos).
"""

import copy

from spatial.nerf.field import FieldConfig
from spatial.nerf.hash_encoding import HashConfig
from spatial.nerf.model import ModelConfig
from spatial.nerf.trainer import NerfTrainConfig


def with_exposure(config: NerfTrainConfig) -> NerfTrainConfig:
    config = copy.deepcopy(config)
    config.exposure = True
    return config


CPU_PROPOSALS = (HashConfig(levels=5, log2_table_size=15, min_resolution=16, max_resolution=128),
                 HashConfig(levels=5, log2_table_size=15, min_resolution=16, max_resolution=256))

PRESETS: dict[str, tuple[str, NerfTrainConfig]] = {
    "default": ("nerfacto's settings, 30k steps (GPU)", NerfTrainConfig()),
    "cpu": (
        "2k steps of 1024 rays, 12-level 2^17 grid, 48/24 proposal and 24 field samples (CPU, ~2 min)",
        NerfTrainConfig(
            model=ModelConfig(
                field=FieldConfig(hash=HashConfig(levels=12, log2_table_size=17, max_resolution=512),
                                  appearance_dim=0),
                proposal_hash=CPU_PROPOSALS, proposal_samples=(48, 24), field_samples=24, anneal_steps=300),
            steps=2000, rays_per_batch=1024, checkpoint_every=500),
    ),
    "tiny": (
        "a 6-level 2^12 grid, 256 rays, 16/8 proposal and 8 field samples (smoke tests)",
        NerfTrainConfig(
            model=ModelConfig(
                field=FieldConfig(hash=HashConfig(levels=6, log2_table_size=12, max_resolution=128), hidden=32,
                                  geo_features=7, colour_layers=1, direction_sh_degree=2, appearance_dim=4),
                proposal_hash=(HashConfig(levels=3, log2_table_size=10, max_resolution=64),
                               HashConfig(levels=3, log2_table_size=10, max_resolution=64)),
                proposal_samples=(16, 8), field_samples=8, anneal_steps=50),
            steps=300, rays_per_batch=256, checkpoint_every=100),
    ),
}
VIDEO = copy.deepcopy(PRESETS["cpu"][1])
VIDEO.model.field.hash = HashConfig(levels=12, log2_table_size=19, max_resolution=2048)
VIDEO.steps, VIDEO.checkpoint_every = 8000, 1000
PRESETS["video"] = ("the cpu preset with a 2048-cell 2^19 grid for 8k steps, for a video's frames (CPU, ~8 min)",
                    VIDEO)
CAPTURE = with_exposure(VIDEO)
CAPTURE.model.field.appearance_dim = 8
CAPTURE.losses.free = 0.05
CAPTURE.losses.unseen = 0.01
CAPTURE.losses.lone = 0.01
CAPTURE.steps = 6000
PRESETS["capture"] = ("the video preset with a per-image appearance, at each photo's recorded exposure, kept out of "
                      "the free space in front of each camera and of space fewer than two photos see, for photos "
                      "(CPU, ~8 min)",
                      CAPTURE)
PRESETS["capture-gpu"] = ("nerfacto's settings at each photo's recorded exposure, for photos (GPU)",
                          with_exposure(PRESETS["default"][1]))
