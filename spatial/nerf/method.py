"""A nerfacto-class NeRF as a training method (registered in spatial/training/methods.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from spatial.errors import SpatialError, file_error
from spatial.nerf.model import NerfModel, check_weights
from spatial.nerf.trained import TrainedNerf
from spatial.nerf.trainer import NerfTrainConfig, NerfTrainer
from spatial.training.methods import Method


def load_nerf(checkpoint: Path, payload: dict, device: torch.device | str = "cpu") -> TrainedNerf:
    """A `TrainedNerf` from a NeRF checkpoint's contents (see `NerfTrainer.checkpoint_state`), every weight's shape
    checked against what the saved config builds (on the meta device: nothing allocated) and finite."""
    from spatial.nerf.field import SpaceMap
    from spatial.training.run_folder import ConfigMismatch, config_from_dict

    try:
        config: NerfTrainConfig = config_from_dict(NerfTrainConfig, payload["config"])
        space = SpaceMap.from_state(payload["space"])
        num_images = payload["num_images"]
        if not isinstance(num_images, int) or isinstance(num_images, bool) or not 0 < num_images <= 1_000_000:
            raise ConfigMismatch(f"num_images must be a whole number from 1 to 1,000,000, not {num_images!r:.20}")
        weights = payload["model"]
        with torch.device("meta"):
            check_weights(checkpoint, NerfModel(space.to("meta"), config.model, num_images), weights)
        with torch.device(device):  # its weights are replaced by the checkpoint's at once
            model = NerfModel(space.to(device), config.model, num_images)
        model.load_state_dict(weights)
    except KeyError as e:
        raise file_error(checkpoint, f"not a NeRF checkpoint: it has no {e}") from None
    except SpatialError as e:  # settings no model is built from (spatial.nerf.model.check_model_config)
        if str(e).startswith(str(checkpoint)):
            raise
        raise file_error(checkpoint, f"its config cannot build a NeRF: {e}") from None
    except (ConfigMismatch, RuntimeError, TypeError, ValueError, OverflowError) as e:
        raise file_error(checkpoint, f"not a readable NeRF checkpoint ({(str(e).splitlines() or [''])[0][:300]})"
                         ) from None
    return TrainedNerf(model.to(device).eval(), checkpoint, downscale=config.downscale)


METHOD = Method(
    name="nerf",
    summary="Train a NeRF (nerfacto-style: hash grids, proposal sampling) on a scene; writes checkpoints and "
            "eval.json.",
    config_type=NerfTrainConfig,
    trainer=NerfTrainer,
    load=load_nerf,
    steps=lambda config: config.steps,
    capture_preset="capture",
    gpu_capture_preset="capture-gpu",
    video_preset="video",
)
