"""The example scripts in scripts/ run as a user would run them, at small size."""

import subprocess
import sys
from pathlib import Path

import trimesh

from spatial.formats import load_splats
from spatial.video_out import read_video

ROOT = Path(__file__).resolve().parents[1]


def run_script(name, *args):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)], capture_output=True,
                            text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_turntable_example(trained_run, tmp_path):
    out = run_script("example_turntable.py", trained_run, "--out", tmp_path / "t.mp4", "--frames", "6",
                     "--width", "64")
    assert "wrote 6 frames" in out
    assert read_video(tmp_path / "t.mp4").shape == (6, 48, 128, 3)  # colour and depth side by side


def test_batch_export_example(trained_run, tmp_path):
    out = run_script("example_batch_export.py", trained_run, trained_run, "--out", tmp_path,
                     "--mesh-resolution", "48")
    folder = tmp_path / trained_run.name
    counts = {len(load_splats(folder / f"splats{s}")["means"]) for s in (".ply", ".splat", ".spz")}
    assert len(counts) == 1 and counts.pop() > 100
    assert len(trimesh.load(folder / "mesh.glb", force="mesh").faces) > 100
    assert "splats.spz" in out and (folder / "preview.png").stat().st_size > 1000
