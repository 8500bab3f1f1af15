"""Certify a CUDA machine: run everything that only runs on a GPU, and report it side by side.

    ./scripts/setup.sh dev && .venv/bin/python scripts/gpu_check.py      # after the README's set-up
    python scripts/gpu_check.py --splat-steps 300 --nerf-steps 200       # a quicker pass

It installs nothing. On a machine without CUDA it exits at once (status 2) with one line saying so.
With a GPU, in this order, each stage reported even when an earlier one failed:
1. gsplat: its version, whether its CUDA kernels build and load (the first use builds them when the
   installed wheel ships none; the seconds it took), or the error that stopped them;
2. the `cuda`-marked tests (`pytest -m cuda`): our portable rasterizer on CUDA against gsplat's kernels,
   forward and gradients;
3. splats: the built-in default scene trained with `--preset default` for `--splat-steps` steps (the
   preset's 30k-step schedule, stopped early), once with gsplat's rasterizer and once with our portable
   torch rasterizer: test PSNR, steps per second and peak GPU memory, and the GPU synchronisations per
   step outside densification (torch's sync debug mode; `counted`: spatial.host_syncs's count of the same
   steps, the one tests/test_host_syncs.py holds to a budget on the CPU);
4. NeRF: `--preset default` for `--nerf-steps` steps with bfloat16 autocast on and off.
Figures go to scripts/results/gpu_check.{txt,json} (or --out). The exit status is 0 when every stage
ran and its figures are sane (finite PSNR above a floor; gsplat and the torch rasterizer within
--psnr-tolerance dB of each other; at most SYNC_BUDGET syncs per ordinary step), else 1. A gsplat
that cannot be built is reported and fails the check, but the portable backend and the NeRF still
run, so the machine is still measured.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing: `python scripts/gpu_check.py`
DEVICE = "cuda"  # what the trainings run on (tests/test_gpu_check.py runs this script's stages on the CPU)
SYNC_BUDGET = 1  # host syncs per ordinary training step, every run (tests/test_host_syncs.py holds ours on the CPU)


def machine() -> dict:
    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "gpu_memory_gb": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}", "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version()}


def check_gsplat() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from spatial.render.gsplat_backend import gsplat_problem

    try:
        installed = version("gsplat")
    except PackageNotFoundError:
        installed = None
    # a JIT build of gsplat's kernels for this GPU alone, on every core (unless the caller chose otherwise)
    major, minor = torch.cuda.get_device_capability(0)
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    start = time.time()
    problem = gsplat_problem()  # builds the kernels on first use
    return {"version": installed, "usable": problem is None, "problem": problem,
            "load_seconds": round(time.time() - start, 1), "arch_list": os.environ["TORCH_CUDA_ARCH_LIST"],
            "max_jobs": os.environ["MAX_JOBS"]}


def run_cuda_tests(timeout: int) -> dict:
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rs", "-p", "no:cacheprovider", "tests"]
    start = time.time()
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "summary": f"timed out after {timeout} s", "seconds": timeout}
    output = proc.stdout + proc.stderr
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed|error|skipped)", line)]
    summary = lines[-1].strip("= ") if lines else output[-500:]
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", summary)) else 0
    return {"ok": proc.returncode == 0 and passed > 0 and "skipped" not in summary, "summary": summary,
            "seconds": round(time.time() - start, 1), "tail": output[-3000:] if proc.returncode else ""}


def measure(trainer, steps: int, sync_probe_steps: int = 5) -> dict:
    """Train to `steps` (timed), probe the synchronisations of a few ordinary steps, then evaluate."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.time()
    trainer.train(steps)
    torch.cuda.synchronize()
    seconds = time.time() - start
    trainer.step()  # step `steps` may densify or check for NaN (multiples of 10 and 100); the probe's do not
    syncs, counted = count_syncs(trainer, sync_probe_steps)
    result = trainer.evaluate()
    return {"steps": result["step"], "train_seconds": round(seconds, 1),
            "steps_per_second": round(steps / seconds, 2),
            "test_psnr": round(result["psnr"], 3), "test_ssim": round(result["ssim"], 4),
            "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            "syncs_per_step": syncs, "counted_syncs_per_step": counted, **trainer.eval_extras()}


def count_syncs(trainer, steps: int) -> tuple[float, float]:
    """GPU synchronisations per training step (rasterizer included): from torch's sync debug mode, and as
    spatial.host_syncs counts the same steps (what the CPU tests hold to a budget), so each run shows whether the
    counter sees what the GPU does."""
    from spatial.host_syncs import HostSyncs

    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught, HostSyncs() as counted:
            warnings.simplefilter("always")
            for _ in range(steps):
                trainer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return round(sum("synchroniz" in str(w.message) for w in caught) / steps, 1), round(counted.total / steps, 1)


def train_splats(scene_path: Path, backend: str, steps: int, out: Path) -> dict:
    from spatial.configs.splat import PRESETS
    from spatial.io import load_scene
    from spatial.splats.trainer import SplatTrainer

    config = copy.deepcopy(PRESETS["default"][1])  # the preset as `--preset default` gives it
    config.step.render.backend = backend
    config.checkpoint_every = 0
    config.device = DEVICE
    trainer = SplatTrainer(load_scene(scene_path), config, out)
    return {"backend": backend, **measure(trainer, steps)}


def train_nerf(scene_path: Path, mixed_precision: bool, steps: int, out: Path) -> dict:
    from spatial.configs.nerf import PRESETS
    from spatial.io import load_scene
    from spatial.nerf.trainer import NerfTrainer

    config = copy.deepcopy(PRESETS["default"][1])
    config.mixed_precision = mixed_precision
    config.checkpoint_every = 0
    config.device = DEVICE
    trainer = NerfTrainer(load_scene(scene_path), config, out)
    if trainer.device.type != "cuda":  # the CPU stand-in of tests/test_gpu_check.py (autocast defaults on CUDA only)
        trainer.autocast = mixed_precision
    assert trainer.autocast == mixed_precision, "mixed_precision must switch bfloat16 autocast on CUDA"
    return {"mixed_precision": mixed_precision, **measure(trainer, steps)}


def stage(report: dict, key: str, fn, *args) -> None:
    """Run one measurement; on failure record the error and go on with the next."""
    print(f"-- {key} ...", flush=True)
    try:
        entry = fn(*args)
    except Exception as e:  # noqa: BLE001 - every failure is reported, the other stages still run
        entry = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
    report.setdefault("runs", {})[key] = entry
    print(f"   {json.dumps({k: v for k, v in entry.items() if k != 'traceback'})}", flush=True)
    torch.cuda.empty_cache()


def verdicts(report: dict, args) -> list[str]:
    """Every reason the check fails (empty when it passes)."""
    problems = []
    if not report["gsplat"]["usable"]:
        problems.append(f"gsplat: {report['gsplat']['problem']}")
    if not report["tests"]["ok"]:
        problems.append(f"cuda tests: {report['tests']['summary']}")
    floors = {"splat": args.splat_psnr_floor, "nerf": args.nerf_psnr_floor}
    for key, run in report["runs"].items():
        if "error" in run:
            problems.append(f"{key}: {run['error']}")
        elif not run["test_psnr"] > floors[key.split()[0]]:
            problems.append(f"{key}: test PSNR {run['test_psnr']} dB is below {floors[key.split()[0]]} dB")
    for key, run in report["runs"].items():
        if "syncs_per_step" in run and run["syncs_per_step"] > SYNC_BUDGET:
            problems.append(f"{key}: {run['syncs_per_step']} host syncs per ordinary step, over the budget of "
                            f"{SYNC_BUDGET} (tests/test_host_syncs.py)")
    a, b = report["runs"].get("splat gsplat", {}), report["runs"].get("splat torch", {})
    if "test_psnr" in a and "test_psnr" in b and abs(a["test_psnr"] - b["test_psnr"]) > args.psnr_tolerance:
        problems.append(f"splat backends disagree: gsplat {a['test_psnr']} dB, torch {b['test_psnr']} dB")
    return problems


def text_report(report: dict) -> str:
    m, g, t = report["machine"], report["gsplat"], report["tests"]
    lines = [f"gpu_check on {m['gpu']} ({m['gpu_memory_gb']} GB, sm {m['compute_capability']}), torch {m['torch']}, "
             f"CUDA {m['cuda']}, Python {m['python']}",
             f"gsplat {g['version']}: " + ("kernels loaded" if g["usable"] else f"NOT usable: {g['problem']}")
             + f" ({g['load_seconds']} s)",
             f"cuda tests: {t['summary']} ({t['seconds']} s)", ""]
    lines.append(f"{'run':22s} {'steps':>6s} {'PSNR dB':>8s} {'SSIM':>6s} {'steps/s':>8s} {'peak MB':>9s} "
                 f"{'syncs/step':>10s} {'counted':>8s}")
    for key, r in report["runs"].items():
        if "error" in r:
            lines.append(f"{key:22s} FAILED: {r['error']}")
        else:
            lines.append(f"{key:22s} {r['steps']:6d} {r['test_psnr']:8.2f} {r['test_ssim']:6.3f} "
                         f"{r['steps_per_second']:8.2f} {r['peak_gpu_memory_mb']:9.0f} {r['syncs_per_step']:10.1f} "
                         f"{r['counted_syncs_per_step']:8.1f}")
    lines += ["", "PASS" if not report["problems"] else "FAIL:\n  " + "\n  ".join(report["problems"])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splat-steps", type=int, default=1000,
                        help="steps of each splat run (default preset; a multiple of 10)")
    parser.add_argument("--nerf-steps", type=int, default=500, help="steps of each NeRF run (default preset; a "
                        "multiple of 10)")
    parser.add_argument("--scene-size", default="default", help="size of the built-in orbit scene (scenes/config.py)")
    parser.add_argument("--tests-timeout", type=int, default=600, help="seconds allowed for the cuda tests")
    parser.add_argument("--splat-psnr-floor", type=float, default=20.0, help="lowest sane splat test PSNR (dB)")
    parser.add_argument("--nerf-psnr-floor", type=float, default=15.0, help="lowest sane NeRF test PSNR (dB)")
    parser.add_argument("--psnr-tolerance", type=float, default=1.0,
                        help="largest PSNR difference (dB) allowed between the gsplat and torch splat runs")
    parser.add_argument("--out", type=Path, default=ROOT / "scripts" / "results" / "gpu_check.json",
                        help="where the JSON goes (the text report beside it, as .txt)")
    args = parser.parse_args()
    if args.splat_steps % 10 or args.nerf_steps % 10 or min(args.splat_steps, args.nerf_steps) <= 0:
        parser.error("--splat-steps and --nerf-steps must be positive multiples of 10")
    if not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU, and torch sees none on this machine (torch.cuda.is_available() is "
              "False); run it where `nvidia-smi` lists a GPU, after the README's set-up", file=sys.stderr)
        return 2

    from spatial.files import write_json_atomic
    from spatial.scenes import make_scene

    report = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    print(f"-- machine: {report['machine']}", flush=True)
    print("-- gsplat (builds its CUDA kernels on first use; minutes) ...", flush=True)
    report["gsplat"] = check_gsplat()
    print(f"   {report['gsplat']}", flush=True)
    print("-- cuda tests ...", flush=True)
    report["tests"] = run_cuda_tests(args.tests_timeout)
    print(f"   {report['tests']['summary']}", flush=True)
    scene = make_scene("orbit", args.scene_size)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("gsplat", "torch"):
            if backend == "gsplat" and not report["gsplat"]["usable"]:
                report.setdefault("runs", {})["splat gsplat"] = {"error": f"skipped: {report['gsplat']['problem']}"}
                continue
            stage(report, f"splat {backend}", train_splats, scene, backend, args.splat_steps, Path(tmp) / backend)
        for mixed in (True, False):
            stage(report, f"nerf {'bf16' if mixed else 'fp32'}", train_nerf, scene, mixed, args.nerf_steps,
                  Path(tmp) / f"nerf-{mixed}")
    report["problems"] = verdicts(report, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, report)
    text = text_report(report)
    args.out.with_suffix(".txt").write_text(text + "\n")
    print("\n" + text)
    return 0 if not report["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
