"""Benchmark scaling: one process against several, and structure from motion against the number of images.

    python scripts/bench_scaling.py                       # training, then SfM at 50, 100 and 200 views
    python scripts/bench_scaling.py --skip-sfm --steps 300
    python scripts/bench_scaling.py --skip-training --views 50 100

Training (the built-in orbit scene at default size, the cpu preset's schedule cut to --steps; at 300, the
default, before its first densification): seconds per step for one process with batch size 1 and 2, and for
two gloo processes of batch size 1 through torchrun, which train as the one of batch size 2 (the largest
parameter difference is printed); and the time of the all-reduces each step adds, measured on their own
between two gloo processes at the run's final size. Every process gets one thread, as torchrun gives it, so
the figures compare like with like; on this 2-core machine two processes use both cores where one uses one.

SfM: `spatial process images` on the facade scene rendered at 50, 100 and 200 views (256x192): time per stage,
registered views, and pose error against the true cameras.

Output: stdout, and scripts/results/scaling.{txt,json} (when run with --record).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "scripts" / "results"


def train(scene: Path, out: Path, steps: int, batch: int, processes: int) -> float:
    """Seconds per step of one `spatial train splat` run (its own train_seconds, the steps alone)."""
    args = ["-m", "spatial", "train", "splat", str(scene), "--preset", "cpu", "--step.steps", str(steps),
            "--checkpoint-every", "0", "--batch-size", str(batch), "--out", str(out)]
    if processes > 1:
        args = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes), *args]
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        sys.exit(f"training failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads((out / "eval.json").read_text())["train_seconds"] / steps


def _allreduce_worker(rank: int, numel: int, count: int, repeats: int, port: int, queue) -> None:
    import torch

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    grads, stats = torch.ones(numel), torch.ones(count)
    torch.distributed.barrier()
    start = time.perf_counter()
    for _ in range(repeats):  # one step: the gradients, then the two densification statistics
        torch.distributed.all_reduce(grads)
        torch.distributed.all_reduce(stats)
        torch.distributed.all_reduce(stats)
    if rank == 0:
        queue.put((time.perf_counter() - start) / repeats)
    # gloo's threads let go of the tensors before this process exits (see spatial/training/distributed.py)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def allreduce_seconds(numel: int, count: int, repeats: int = 30) -> float:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_allreduce_worker, args=(r, numel, count, repeats, port, queue))
               for r in range(2)]
    for w in workers:
        w.start()
    seconds = queue.get(timeout=600)
    for w in workers:
        w.join()
    return seconds


def training(steps: int, lines: list[str], record: dict) -> None:
    from spatial.formats.ply import load_ply
    from spatial.scenes import make_scene

    scene = make_scene("orbit", "default")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"1 process, batch 1": (1, 1), "1 process, batch 2": (2, 1), "2 gloo processes, batch 1 each": (1, 2)}
        seconds = {}
        for label, (batch, processes) in runs.items():
            seconds[label] = train(scene, Path(tmp) / label.replace(" ", "_"), steps, batch, processes)
        a = load_ply(Path(tmp) / "1_process,_batch_2" / "splats.ply")
        b = load_ply(Path(tmp) / "2_gloo_processes,_batch_1_each" / "splats.ply")
        same_count = a["means"].shape[0] == b["means"].shape[0]
        difference = max(float((a[k] - b[k]).abs().max()) for k in a) if same_count else float("nan")
        count = b["means"].shape[0]
        numel = sum(v[0].numel() for v in b.values()) * count
    reduce = allreduce_seconds(numel, count)
    base = seconds["1 process, batch 1"]
    start = len(lines)
    lines.append(f"training: orbit (default size, 48 views), cpu preset cut to {steps} steps, one thread a process")
    for label, value in seconds.items():
        lines.append(f"  {label:32} {value:.3f} s/step   {value / base:.2f}x the time of batch 1   "
                     f"{value / base / (runs[label][0] * runs[label][1]):.2f}x per view")
    lines.append(f"  2 processes vs 1 process of batch 2: same Gaussian count {same_count} ({count:,}), largest "
                 f"parameter difference {difference:.2e}")
    lines.append(f"  all-reduces of one step between 2 gloo processes ({count:,} Gaussians, {numel:,} floats): "
                 f"{reduce * 1000:.1f} ms ({100 * reduce / seconds['2 gloo processes, batch 1 each']:.1f}% of a step)")
    record["training"] = {"steps": steps, "seconds_per_step": seconds, "gaussians": count,
                          "max_parameter_difference": difference, "allreduce_seconds_per_step": reduce,
                          "lines": lines[start:]}


def sfm(views: list[int], lines: list[str], record: dict) -> None:
    from PIL import Image

    from spatial import load_scene
    from spatial.process.alignment import pose_errors
    from spatial.process.pipeline import process_images
    from spatial.scenes import make_scene
    from spatial.scenes.config import SceneSize

    start = len(lines)
    lines.append("SfM: facade at 256x192, spatial process images (exhaustive matching up to 200 images; the "
                 "incremental mapper up to 150 images, the global one above)")
    record["sfm"] = {"runs": [], "lines": []}
    for count in views:
        truth = load_scene(make_scene("facade", SceneSize(width=256, height=192, views=count, supersample=2,
                                                          points=500)))
        with tempfile.TemporaryDirectory() as tmp:
            photos = Path(tmp) / "photos"
            photos.mkdir()
            for i in range(len(truth)):
                Image.fromarray((truth.load_image(i) * 255 + 0.5).astype(np.uint8)).save(photos / f"{i:03d}.png")
            manifest = process_images(photos, Path(tmp) / "scene")
            scene = load_scene(Path(tmp) / "scene")
        ids = [int(Path(name).stem) for name in scene.image_names]
        errors = pose_errors(scene.cameras.cam_to_world, truth.cameras.cam_to_world[ids])
        s = manifest["seconds"]
        lines.append(f"  {count:4} views, {manifest['mapper']:11} mapper: registered "
                     f"{manifest['images']['registered']:4}  extract "
                     f"{s['extraction']:6.1f} s  match {s['matching']:6.1f} s  map {s['mapping']:6.1f} s  total "
                     f"{s['total']:6.1f} s  centre err {100 * errors['center_error_max']:.2f}%  rot err "
                     f"{errors['rotation_error_max_deg']:.2f} deg")
        record["sfm"]["runs"].append({"views": count, "registered": manifest["images"]["registered"],
                                      "mapper": manifest["mapper"], "seconds": s,
                                      "center_error_max": errors["center_error_max"],
                                      "rotation_error_max_deg": errors["rotation_error_max_deg"]})
        print(lines[-1], flush=True)
    record["sfm"]["lines"] = lines[start:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (the first densification "
                        "is at step 300)")
    parser.add_argument("--views", type=int, nargs="+", default=[50, 100, 200], help="SfM scene sizes")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-sfm", action="store_true")
    parser.add_argument("--record", action="store_true", help="write scripts/results/scaling.{txt,json}")
    args = parser.parse_args()
    lines: list[str] = []
    record: dict = {}
    if not args.skip_training:
        training(args.steps, lines, record)
        print("\n".join(lines), flush=True)
    if not args.skip_sfm:
        sfm(args.views, lines, record)
    if args.record:  # a part not run this time keeps its recorded figures
        path = RESULTS / "scaling.json"
        recorded = json.loads(path.read_text()) if path.exists() else {}
        recorded.update(record)
        path.write_text(json.dumps(recorded, indent=2) + "\n")
        text = [line for part in ("training", "sfm") if part in recorded for line in recorded[part]["lines"]]
        (RESULTS / "scaling.txt").write_text("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
