"""3D Gaussian Splatting as a training method (registered in spatial/training/methods.py)."""

from spatial.splats.trainer import SplatTrainConfig, SplatTrainer
from spatial.trained import load_splat_checkpoint
from spatial.training.methods import Method

METHOD = Method(
    name="splat",
    summary="Train 3D Gaussian Splats on a scene folder; writes checkpoints, eval.json and splats.ply.",
    config_type=SplatTrainConfig,
    trainer=SplatTrainer,
    load=load_splat_checkpoint,
    steps=lambda config: config.step.steps,
    capture_preset="capture",
    gpu_capture_preset="capture-gpu",
)
