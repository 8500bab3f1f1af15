"""Checkpoints from strangers are read without running what they carry; a damaged newest checkpoint
does not stop --resume; temporaries of killed writers are cleaned up."""

import os
import subprocess
import sys

import pytest
import torch

from spatial import SpatialError
from spatial.files import write_bytes_atomic
from spatial.splats.step import StepConfig
from spatial.splats.strategies import DefaultStrategy
from spatial.splats.trainer import SplatTrainConfig
from spatial.training.checkpoint import read_checkpoint
from spatial.training.loop import run_training


class RunsCodeOnLoad:
    """Unpickling this calls open(marker, "w"): any code at all could stand in its place."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker, evil = tmp_path / "ran", tmp_path / "model.pt"
    torch.save({"params": {"means": torch.zeros(1, 3)}, "trap": RunsCodeOnLoad(marker)}, evil)
    command = [sys.executable, "-m", "spatial", "export", "ply", str(evil), "--out", str(tmp_path / "x.ply")]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 2 and not marker.exists()
    assert proc.stderr.strip() == (
        f"error: {evil}: not a checkpoint written by `spatial train`: it holds Python objects other than tensors "
        "and plain data, which are never loaded (they could run code)")
    torch.load(evil, weights_only=False)  # the file is live: an unsafe reader would have run it
    assert marker.exists()


def test_damaged_and_foreign_files_get_one_line(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(SpatialError, match=r"notes.pt: not a readable checkpoint \(not a PyTorch file, or a damaged"):
        read_checkpoint(text)
    good = tmp_path / "good.pt"
    torch.save({"step": 3}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(SpatialError, match=r"cut.pt: not a readable checkpoint \("):
        read_checkpoint(cut)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(SpatialError, match=r"list.pt: not a checkpoint written by `spatial train` \(no model inside\)"):
        read_checkpoint(tmp_path / "list.pt")


def test_resume_passes_over_a_damaged_newest_checkpoint(orbit_path, tmp_path, capsys):
    config = SplatTrainConfig(step=StepConfig(steps=10, sh_degree=1),
                              strategy=DefaultStrategy(refine_start=1000), checkpoint_every=4)
    out = tmp_path / "run"
    run_training("splat", orbit_path, out, config, resume=False)
    checkpoints = sorted((out / "checkpoints").glob("step-*.pt"))
    assert [p.name for p in checkpoints] == ["step-000008.pt", "step-000010.pt"]
    checkpoints[-1].write_bytes(checkpoints[-1].read_bytes()[:1000])  # as a full disk might leave it
    config.step.steps = 12
    result = run_training("splat", orbit_path, out, config, resume=True)
    printed = capsys.readouterr().out.replace("\n", "")
    assert f"{checkpoints[-1]}: not a readable checkpoint" in printed
    assert "resuming from the checkpoint before it" in printed and "(step 8)" in printed
    assert result["step"] == 12


def test_temporaries_of_killed_writers_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "model.ply"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.ply.{int(dead.stdout)}.tmp"  # that process has exited
    alive = tmp_path / f".model.ply.{os.getppid()}.tmp"  # a writer that may still be running
    other = tmp_path / f".other.ply.{int(dead.stdout)}.tmp"  # another target's
    for path in (stale, alive, other):
        path.write_bytes(b"partial")
    write_bytes_atomic(target, b"done")
    assert target.read_bytes() == b"done"
    assert not stale.exists() and alive.exists() and other.exists()
