"""CPU training speed: seconds per splat training iteration (forward, backward, optimizer step).

    python scripts/bench_cpu_training.py --scene outputs/sceaux      # a processed sceaux_castle
    python scripts/bench_cpu_training.py --scene outputs/sceaux --out scripts/results/cpu_training.json

1. The reference configuration: the scene at 1/4 resolution, Gaussians initialised from its SfM
   points, SH degree 0, no densification. It prints the median of 20 iterations after 5 of warm-up,
   and the same for the pure-PyTorch path (the baseline, measured in the same run) with the ratio.
   Reference point: the C++/libtorch CPU trainer OpenSplat 1.1.5 (CPU build), measured side by side on
   the project's 2-core machine, takes about 0.69 s per iteration here (`OPENSPLAT_SECONDS`).
2. A sweep over resolution and Gaussian count, with the measured time per (pixel x Gaussians per
   tile), which stays flat when time grows linearly with that work.
3. Peak memory of one iteration at 1920x1080 with 500,000 Gaussians (its own process).
4. With --e2e: the default built-in scene trained with the cpu preset, as seconds per 1,000 iterations.
Make the scene with: spatial process images ../shared/data/sceaux_castle/images outputs/sceaux --max-size 0
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

OPENSPLAT_SECONDS = 0.69  # OpenSplat 1.1.5, CPU build, this configuration, re-measured side by side


def iteration_times(scene, config, steps: int, warmup: int):
    from spatial.splats.trainer import SplatTrainer

    trainer = SplatTrainer(scene, config, Path("/tmp/spatial-bench"))
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        trainer.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times, trainer


def reference_config(backend: str):
    from spatial.render import RenderOptions
    from spatial.splats.step import StepConfig
    from spatial.splats.strategies import DefaultStrategy
    from spatial.splats.trainer import SplatTrainConfig

    return SplatTrainConfig(
        step=StepConfig(steps=30_000, sh_degree=0, render=RenderOptions(backend=backend)),
        strategy=DefaultStrategy(refine_start=10**9), checkpoint_every=0, downscale=4,
    )


def tile_work(scene, params) -> float:
    """Mean Gaussians per 16x16 tile over the scene's first view (the sweep's normaliser)."""
    import torch

    from spatial.render.projection import project
    from spatial.render.tiles import bin_gaussians

    cams = scene.cameras
    W, H = int(cams.width[0]), int(cams.height[0])
    p = project(params["means"], params["quats"], torch.exp(params["scales"]), torch.sigmoid(params["opacities"]),
                cams.world_to_cam[:1], cams.K[:1], W, H)
    bins = bin_gaussians(p.means2d[0], p.radii[0], p.depths[0], W, H, 16)
    return bins.gaussian_ids.shape[0] / (bins.tiles_x * bins.tiles_y)


def memory_probe() -> None:
    """One training iteration at 1080p with 500k Gaussians; prints its peak resident memory in MB."""
    import torch

    from spatial.cameras import intrinsics_from_fov
    from spatial.splats.model import render_splats

    n, W, H = 500_000, 1920, 1080
    g = torch.Generator().manual_seed(0)
    means = torch.stack([(torch.rand(n, generator=g) - 0.5) * 6, (torch.rand(n, generator=g) - 0.5) * 3.4,
                         3 + 3 * torch.rand(n, generator=g)], -1)
    params = torch.nn.ParameterDict({
        "means": torch.nn.Parameter(means), "quats": torch.nn.Parameter(torch.randn(n, 4, generator=g)),
        "scales": torch.nn.Parameter(torch.log(torch.full((n, 3), 0.012))),
        "opacities": torch.nn.Parameter(torch.zeros(n)), "sh0": torch.nn.Parameter(torch.rand(n, 1, 3)),
        "shN": torch.nn.Parameter(torch.zeros(n, 0, 3))})
    out = render_splats(params, torch.eye(4)[None], intrinsics_from_fov(70, W, H)[None], W, H, 0, torch.ones(3))
    out.rgb.mean().backward()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", type=Path, required=False, help="a processed sceaux_castle scene folder")
    parser.add_argument("--steps", type=int, default=20, help="timed iterations (median reported)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--e2e", action="store_true", help="also train the default scene with the cpu preset (~6 min)")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe()
        return
    if args.scene is None:
        parser.error("--scene is required (see the module docstring for how to make it)")

    import torch

    from spatial import load_scene

    results: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    scene = load_scene(args.scene)
    small = scene.downscaled(4)
    W, H = int(small.cameras.width[0]), int(small.cameras.height[0])
    print(f"reference: {args.scene.name} at 1/4 = {W}x{H}, {scene.points.shape[0]:,} SfM points, SH 0, "
          f"{torch.get_num_threads()} threads")
    for backend, steps in (("cpu", args.steps), ("torch", max(3, args.steps // 4))):
        times, trainer = iteration_times(scene, reference_config(backend), steps, warmup=5 if backend == "cpu" else 1)
        n = trainer.state.params["means"].shape[0]
        median = statistics.median(times)
        results[f"reference_{backend}"] = {"median_s": round(median, 4), "iterations": len(times), "gaussians": n,
                                           "width": W, "height": H}
        print(f"  {backend:6} backend: median {median:.3f} s per iteration over {len(times)} "
              f"(min {min(times):.3f}, max {max(times):.3f}), {n:,} Gaussians")
    ratio = results["reference_torch"]["median_s"] / results["reference_cpu"]["median_s"]
    results["speedup_vs_pure_torch"] = round(ratio, 2)
    versus = OPENSPLAT_SECONDS / results["reference_cpu"]["median_s"]
    results["speedup_vs_opensplat"] = round(versus, 2)
    print(f"  speed-up over the pure-PyTorch path: {ratio:.1f}x; vs OpenSplat's {OPENSPLAT_SECONDS} s: {versus:.1f}x")

    print("sweep (cpu backend): time per iteration against pixels x Gaussians per tile")
    sweep = []
    for factor in (8, 4, 2):
        for keep in (0.25, 1.0):
            config = reference_config("cpu")
            config.downscale = factor
            sub = scene
            if keep < 1:
                from dataclasses import replace

                idx = torch.randperm(scene.points.shape[0], generator=torch.Generator().manual_seed(0))
                idx = idx[: int(keep * len(idx))]
                sub = replace(scene, points=scene.points[idx], point_colors=scene.point_colors[idx])
            times, trainer = iteration_times(sub, config, 8, warmup=2)
            n = trainer.state.params["means"].shape[0]
            per_tile = tile_work(trainer.scene, trainer.state.params)
            pixels = int(trainer.scene.cameras.width[0]) * int(trainer.scene.cameras.height[0])
            median = statistics.median(times)
            row = {"downscale": factor, "pixels": pixels, "gaussians": n, "gaussians_per_tile": round(per_tile, 1),
                   "median_s": round(median, 4),
                   "ns_per_pixel_x_tile_gaussian": round(1e9 * median / (pixels * per_tile), 3)}
            sweep.append(row)
            print(f"  1/{factor} {pixels:>8,} px  {n:>6,} Gaussians  {per_tile:7.1f} per tile  {median:.3f} s  "
                  f"{row['ns_per_pixel_x_tile_gaussian']:.3f} ns per pixel x tile-Gaussian")
    results["sweep"] = sweep

    probe = subprocess.run([sys.executable, __file__, "--memory-probe"], capture_output=True, text=True)
    if probe.returncode == 0:
        peak = float(probe.stdout.strip().splitlines()[-1])
        results["peak_memory_1080p_500k_mb"] = round(peak, 1)
        print(f"peak memory, one iteration at 1920x1080 with 500,000 Gaussians: {peak:,.0f} MB "
              f"({'under' if peak < 6144 else 'OVER'} 6 GB)")
    else:
        print(f"memory probe failed: {probe.stderr.strip()[-300:]}")
    if args.e2e:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_render import end_to_end_training

        result = end_to_end_training()
        steps = result["step"]
        results["default_scene_cpu_preset"] = {**result, "seconds_per_1000_iterations":
                                               round(1000 * result["train_seconds"] / steps, 1)}
        print(f"default scene, cpu preset: {1000 * result['train_seconds'] / steps:.0f} s per 1,000 iterations")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
