"""Benchmark the splat rasterizer: forward and forward+backward time and peak memory per image.

    python scripts/bench_render.py                   # CPU sweep, both CPU backends, to stdout
    python scripts/bench_render.py --quick           # a small sweep for a smoke test
    python scripts/bench_render.py --out results.json
    python scripts/bench_render.py --e2e             # also train the default scene (cpu preset) end to end

Sweep: 10k, 50k and 200k Gaussians at 256x256, 512x512 and 1920x1080, random Gaussians in front
of the camera sized like a trained scene's. Each configuration runs in its own process, so the
peak resident memory reported is that configuration's alone. On a CUDA machine the gsplat backend
is measured beside ours and the ratio printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

COUNTS = (10_000, 50_000, 200_000)
SIZES = ((256, 256), (512, 512), (1920, 1080))


def measure(backend: str, count: int, width: int, height: int, device: str, repeats: int) -> dict:
    import torch

    from spatial.cameras import intrinsics_from_fov
    from spatial.render import RenderOptions, rasterize

    g = torch.Generator().manual_seed(0)
    # A slab of Gaussians 2-4 units in front of the camera, filling the view.
    means = torch.stack([(torch.rand(count, generator=g) - 0.5) * 3.2, (torch.rand(count, generator=g) - 0.5) * 1.8,
                         2 + 2 * torch.rand(count, generator=g)], -1)
    scales = torch.exp(torch.randn(count, 3, generator=g) * 0.3) * (0.6 / count ** (1 / 3))
    params = [means, torch.randn(count, 4, generator=g), scales, torch.rand(count, generator=g) * 0.9,
              torch.rand(count, 1, 3, generator=g)]
    params = [p.to(device).requires_grad_() for p in params]
    w2c = torch.eye(4, device=device)[None]
    K = intrinsics_from_fov(70, width, height)[None].to(device)
    options = RenderOptions(sh_degree=0, backend=backend)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    forward, total = [], []
    for i in range(repeats + 1):
        sync()
        t0 = time.perf_counter()
        out = rasterize(*params, w2c, K, width, height, options=options)
        sync()
        t1 = time.perf_counter()
        out.rgb.sum().backward()
        sync()
        t2 = time.perf_counter()
        if i > 0:  # the first run warms up allocators (and compiles kernels)
            forward.append(t1 - t0)
            total.append(t2 - t0)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"backend": backend, "gaussians": count, "width": width, "height": height,
            "forward_s": round(statistics.median(forward), 4), "forward_backward_s": round(statistics.median(total), 4),
            "peak_memory_mb": round(peak, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k Gaussians at 256x256 only")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions after one warm-up")
    parser.add_argument("--backends", default=None, help="comma-separated (default: cpu,torch; gsplat,torch on CUDA)")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    parser.add_argument("--e2e", action="store_true",
                        help="also train the default built-in scene with the auto preset and report time and PSNR")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one configuration
    args = parser.parse_args()
    if args.one:
        backend, count, width, height, device = args.one.split(",")
        print(json.dumps(measure(backend, int(count), int(width), int(height), device, args.repeats)))
        return

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    backends = (args.backends or ("gsplat,torch" if device == "cuda" else "cpu,torch")).split(",")
    counts, sizes = ((10_000,), ((256, 256),)) if args.quick else (COUNTS, SIZES)
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'backend':8} {'gaussians':>9} {'size':>10} {'forward s':>10} {'fwd+bwd s':>10} {'peak MB':>9}")
    rows = []
    for count in counts:
        for width, height in sizes:
            for backend in backends:
                if backend == "torch" and device == "cpu" and count * width * height > 50_000 * 512 * 512:
                    continue  # the pure-PyTorch reference path takes minutes here; the C kernel is the CPU path
                cmd = [sys.executable, __file__, "--one", f"{backend},{count},{width},{height},{device}",
                       "--repeats", str(args.repeats)]
                result = subprocess.run(cmd, capture_output=True, text=True)
                if result.returncode != 0:
                    print(f"{backend:8} {count:>9} {width}x{height}: failed: {result.stderr.strip()[-300:]}")
                    continue
                row = json.loads(result.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{backend:8} {count:>9} {f'{width}x{height}':>10} {row['forward_s']:>10.3f} "
                      f"{row['forward_backward_s']:>10.3f} {row['peak_memory_mb']:>9.0f}", flush=True)
            base = [r for r in rows if r["gaussians"] == count and r["width"] == width and r["backend"] == backends[-1]]
            ours = [r for r in rows if r["gaussians"] == count and r["width"] == width and r["backend"] == backends[0]]
            if base and ours and len(backends) > 1:
                print(f"{'':8} ratio {backends[-1]}/{backends[0]} fwd+bwd: "
                      f"{base[0]['forward_backward_s'] / ours[0]['forward_backward_s']:.1f}x")
    end_to_end = end_to_end_training() if args.e2e else None
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": device, "threads": torch.get_num_threads(), "rows": rows,
                       "end_to_end": end_to_end}, f, indent=2)


def end_to_end_training() -> dict:
    """Train the default scene as `spatial demo` does and return its evaluation."""
    import tempfile
    from pathlib import Path

    from spatial.scenes import make_scene
    from spatial.training.loop import run_training
    from spatial.training.methods import get_method

    with tempfile.TemporaryDirectory() as tmp:
        result = run_training("splat", make_scene("orbit", "default"), Path(tmp) / "run",
                              get_method("splat").preset_config("auto"), resume=False,
                              preset="auto")
    print(f"end to end (orbit, default size, auto preset): test PSNR {result['psnr']:.2f} dB, "
          f"SSIM {result['ssim']:.3f}, {result['train_seconds']:.0f} s training, {result['gaussians']:,} Gaussians, "
          f"peak {result['peak_memory_mb']:.0f} MB")
    return result


if __name__ == "__main__":
    main()
