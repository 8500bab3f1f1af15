"""scripts/gpu_check.py: refuses a machine without CUDA in one line, and its GPU stages run end to end
(here on the CPU, with torch.cuda's bookkeeping stubbed), so the first GPU that runs it runs real code."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_in_one_line_and_fails():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("gpu_check needs a CUDA GPU")


def test_its_stages_run_and_report(orbit_path, tmp_path, monkeypatch):
    gpu_check = load_script()
    monkeypatch.setattr(gpu_check, "DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name in ("synchronize", "reset_peak_memory_stats", "empty_cache", "set_sync_debug_mode"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a, **k: 3 * 2**20)
    monkeypatch.setattr(gpu_check, "machine", lambda: {"gpu": "stub", "gpu_memory_gb": 0, "compute_capability": "0.0",
                                                       "torch": torch.__version__, "cuda": None, "python": "3"})
    monkeypatch.setattr(gpu_check, "check_gsplat", lambda: {"version": None, "usable": False, "load_seconds": 0.0,
                                                            "problem": "there is no CUDA device"})
    monkeypatch.setattr(gpu_check, "run_cuda_tests", lambda timeout: {"ok": False, "summary": "4 skipped",
                                                                       "seconds": 0.0})
    monkeypatch.setattr("spatial.scenes.make_scene", lambda name, size: orbit_path)
    from spatial.configs.nerf import PRESETS

    monkeypatch.setitem(PRESETS, "default", PRESETS["tiny"])  # nerfacto's sizes take a minute a step here
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--splat-steps", "20", "--nerf-steps", "10",
                                      "--out", str(tmp_path / "gpu_check.json")])
    assert gpu_check.main() == 1  # no gsplat: the check fails, and says why
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    runs = report["runs"]
    assert runs["splat gsplat"]["error"] == "skipped: there is no CUDA device"
    for key in ("splat torch", "nerf bf16", "nerf fp32"):
        assert "error" not in runs[key], runs[key]
        assert runs[key]["test_psnr"] > 5 and runs[key]["peak_gpu_memory_mb"] == 3.0
    assert runs["splat torch"]["steps"] == 26 and runs["nerf fp32"]["steps"] == 16  # the probe's steps count too
    assert runs["splat torch"]["counted_syncs_per_step"] == 1.0 and runs["nerf fp32"]["counted_syncs_per_step"] == 0
    text = (tmp_path / "gpu_check.txt").read_text()
    assert "gsplat None: NOT usable: there is no CUDA device" in text and "nerf bf16" in text
    assert "FAIL:" in text and "cuda tests: 4 skipped" in text and "counted" in text


def test_a_run_over_the_sync_budget_fails_the_check():
    gpu_check = load_script()
    args = type("Args", (), {"splat_psnr_floor": 20.0, "nerf_psnr_floor": 15.0, "psnr_tolerance": 1.0})()
    report = {"gsplat": {"usable": True}, "tests": {"ok": True},
              "runs": {"splat torch": {"test_psnr": 28.7, "syncs_per_step": 25.0},
                       "nerf fp32": {"test_psnr": 30.6, "syncs_per_step": 1.0}}}
    assert gpu_check.verdicts(report, args) == [
        "splat torch: 25.0 host syncs per ordinary step, over the budget of 1 (tests/test_host_syncs.py)"]
