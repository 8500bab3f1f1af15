"""Progress where output is not a terminal (a log file, CI): plain lines with count, rate and time left."""

import io
import os
import subprocess
import sys

from rich.console import Console

from spatial.progress import PlainProgress, progress_bar


def test_plain_lines_at_most_every_interval_and_at_the_end(monkeypatch):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    times = iter([0.0, 1.0, 5.0, 11.0, 12.0, 30.0])
    monkeypatch.setattr("spatial.progress.time.monotonic", lambda: next(times))
    advance = PlainProgress("train", console, every=10.0)  # starts its clock at 0 s
    for done, text in ((100, "loss 0.5"), (200, ""), (400, "loss 0.2"), (450, ""), (1000, "loss 0.1")):
        advance(done, 1000, text)
    assert out.getvalue().splitlines() == [
        "train 400/1000 (40%) 27.27/s, 0:22 left  loss 0.2",  # 300 steps since the first call, in 11 s
        "train 1000/1000 (100%) 30.00/s  loss 0.1",
    ]


def test_a_logged_training_run_prints_progress(orbit_path, tmp_path):
    env = {**os.environ, "SPATIAL_PROGRESS_SECONDS": "0"}
    proc = subprocess.run([sys.executable, "-m", "spatial", "train", "splat", str(orbit_path), "--preset", "cpu",
                           "--step.steps", "30", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("train ")]
    assert [line.split()[1] for line in lines] == ["0/30", "10/30", "20/30", "30/30"]
    assert "loss" in lines[-1] and "psnr" in lines[-1]


def test_progress_bar_picks_plain_lines_off_a_terminal():
    console = Console(file=io.StringIO(), force_terminal=False)
    with progress_bar("render", 3, console, every=0) as advance:
        assert isinstance(advance, PlainProgress)
        advance(3, 3)
    assert console.file.getvalue().startswith("render 3/3 (100%)")
