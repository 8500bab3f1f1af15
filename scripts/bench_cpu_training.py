"""CPU training speed: seconds per splat training iteration (forward, backward, optimizer step), ours beside OpenSplat.

    python scripts/bench_cpu_training.py --scene outputs/sceaux --opensplat /path/to/opensplat \
        --out scripts/results/cpu_training.json | tee scripts/results/cpu_training.txt

1. The reference configuration: the scene at 1/4 resolution, Gaussians initialised from its SfM points, SH degree
   0, no densification, both cores. Measured interleaved, `--repeats` times: ours (the median of `--steps`
   iterations after 5 of warm-up) and OpenSplat 1.1.5's CPU build (`--opensplat BIN`; without it the steps to build
   it are printed and no ratio is given) on the same scene folder with the same settings (`-d 4 --num-downscales 0`,
   densification off by `--warmup-length`, SH degree 0 for its first 1000 steps, SSIM weight 0.2 as ours). Its
   time per iteration is (T(n2) - T(n1)) / (n2 - n1) of two runs of n1 and n2 iterations, which cancels its start-up
   (loading and downscaling the photos). The ratio is the median of ours against the median of its.
2. Where our step spends its time (torch's profiler over 5 iterations, the top operations).
3. The pure-PyTorch path (the `torch` backend) on the same configuration: the speed-up of the C kernel.
4. A sweep over resolution and Gaussian count, with the measured time per (pixel x Gaussians per tile), which stays
   flat when time grows linearly with that work.
5. Peak memory of one iteration at 1920x1080 with 500,000 Gaussians (its own process).
6. With --e2e: the default built-in scene trained with the cpu preset: test PSNR and training seconds.
Make the scene with: spatial process images ../shared/data/sceaux_castle/images outputs/sceaux --max-size 0
Nothing else may run on the machine meanwhile: two trainers sharing two cores measure the sharing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_real_captures import OPENSPLAT_BUILD  # noqa: E402 - how to build the peer, said once for both benches

OPENSPLAT_STEPS = (10, 40)  # the two run lengths whose difference is timed


def iteration_times(scene, config, steps: int, warmup: int, trainer=None):
    """Seconds of each of `steps` iterations after `warmup` more, on `trainer` (made from `scene` and `config` when
    None); the times and the trainer, which goes on from where it stopped when passed again."""
    from spatial.splats.trainer import SplatTrainer

    trainer = trainer or SplatTrainer(scene, config, Path(tempfile.mkdtemp(prefix="spatial-bench-")))
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        trainer.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times, trainer


def opensplat_iteration(binary: Path, scene: Path) -> tuple[float, list[float]]:
    """OpenSplat's seconds per iteration on `scene` in the reference configuration, from two runs of
    OPENSPLAT_STEPS iterations (their wall times returned too)."""
    walls = []
    with tempfile.TemporaryDirectory() as out:
        for n in OPENSPLAT_STEPS:
            command = [str(binary), str(scene.resolve()), "--cpu", "--keep-crs", "-d", "4", "--num-downscales", "0",
                       "--sh-degree", "1", "--sh-degree-interval", "1000", "--warmup-length", "1000000",
                       "--ssim-weight", "0.2", "-n", str(n), "-o", str(Path(out) / "splat.ply")]
            start = time.perf_counter()
            done = subprocess.run(command, cwd=out, capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"OpenSplat failed (exit {done.returncode}): {(done.stdout + done.stderr)[-500:]}")
            if f"Step {n}:" not in done.stdout:
                raise SystemExit(f"OpenSplat did not report step {n}: {done.stdout[-500:]}")
    return (walls[1] - walls[0]) / (OPENSPLAT_STEPS[1] - OPENSPLAT_STEPS[0]), walls


def step_profile(trainer, steps: int = 5, rows: int = 14) -> str:
    """torch's profiler over `steps` iterations: the operations taking the most time, as a table."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


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
    parser.add_argument("--steps", type=int, default=20, help="timed iterations of ours per repeat (median reported)")
    parser.add_argument("--opensplat", type=Path, help="OpenSplat's binary (1.1.5, CPU build), timed beside ours")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved measurements of each trainer")
    parser.add_argument("--no-sweep", action="store_true", help="skip the resolution sweep and the memory probe")
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
    from spatial.c_kernels import kernel_isa
    from spatial.render import cpu_kernel

    lanes = cpu_kernel.load().composite_lanes()
    print(f"reference: {args.scene.name} at 1/4 = {W}x{H}, {scene.points.shape[0]:,} SfM points, SH 0, "
          f"{torch.get_num_threads()} threads; {platform.processor() or platform.machine()}, kernel build "
          f"{kernel_isa()} ({lanes} lanes)")
    results.update(width=W, height=H, kernel_isa=kernel_isa(), kernel_lanes=lanes)
    if args.opensplat is None:
        print("  " + OPENSPLAT_BUILD.replace("\n", "\n  "))
    elif not os.access(args.opensplat, os.X_OK):
        raise SystemExit(f"--opensplat {args.opensplat}: not an executable file")
    ours, peer, trainer = [], [], None
    for r in range(args.repeats):
        times, trainer = iteration_times(scene, reference_config("cpu"), args.steps, 5 if trainer is None else 1,
                                         trainer)
        ours.append(statistics.median(times))
        line = f"  repeat {r + 1}: ours {ours[-1]:.3f} s per iteration (median of {len(times)})"
        if args.opensplat is not None:
            seconds, walls = opensplat_iteration(args.opensplat, args.scene)
            peer.append(seconds)
            line += (f"; OpenSplat {seconds:.3f} s ({OPENSPLAT_STEPS[0]} iterations in {walls[0]:.1f} s, "
                     f"{OPENSPLAT_STEPS[1]} in {walls[1]:.1f} s)")
        print(line, flush=True)
    n = trainer.state.params["means"].shape[0]
    results["reference_cpu"] = {"median_s": round(statistics.median(ours), 4), "repeats": [round(t, 4) for t in ours],
                                "iterations_per_repeat": args.steps, "gaussians": n}
    print(f"  ours: median {statistics.median(ours):.3f} s per iteration over {args.repeats} repeats, {n:,} Gaussians")
    if peer:
        results["reference_opensplat"] = {"median_s": round(statistics.median(peer), 4),
                                          "repeats": [round(t, 4) for t in peer], "binary": str(args.opensplat),
                                          "runs": list(OPENSPLAT_STEPS)}
        versus = statistics.median(peer) / statistics.median(ours)
        results["speedup_vs_opensplat"] = round(versus, 2)
        print(f"  OpenSplat: median {statistics.median(peer):.3f} s per iteration over {args.repeats} repeats")
        print(f"  ours is {versus:.2f}x faster per iteration than OpenSplat (target 5x: "
              f"{'met' if versus >= 5 else 'NOT met'})")
    print("where our step spends its time (5 iterations):")
    table = step_profile(trainer)
    print("\n".join("  " + line for line in table.splitlines()))
    results["profile"] = table

    times, baseline = iteration_times(scene, reference_config("torch"), max(3, args.steps // 4), 1)
    results["reference_torch"] = {"median_s": round(statistics.median(times), 4), "iterations": len(times)}
    ratio = statistics.median(times) / results["reference_cpu"]["median_s"]
    results["speedup_vs_pure_torch"] = round(ratio, 2)
    print(f"  torch backend: median {statistics.median(times):.3f} s per iteration over {len(times)}; the C kernel "
          f"is {ratio:.1f}x faster")
    del baseline
    if not args.no_sweep:
        sweep_and_memory(scene, results)
    if args.e2e:
        from bench_render import end_to_end_training

        result = end_to_end_training()
        results["default_scene_cpu_preset"] = result
        print(f"default scene, cpu preset: {result['psnr']:.2f} dB (target 31.5) in {result['train_seconds']:.0f} s "
              f"of training (target 180)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


def sweep_and_memory(scene, results: dict) -> None:
    import torch

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


if __name__ == "__main__":
    main()
