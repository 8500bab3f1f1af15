"""A nerfacto-class NeRF as a training method (registered in spatial/training/methods.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from spatial.errors import file_error
from spatial.nerf.trained import TrainedNerf
from spatial.nerf.trainer import NerfTrainConfig, NerfTrainer
from spatial.training.methods import Method


def load_nerf(checkpoint: Path, payload: dict, device: torch.device | str = "cpu") -> TrainedNerf:
    """A `TrainedNerf` from a NeRF checkpoint's contents (see `NerfTrainer.checkpoint_state`)."""
    from spatial.nerf.field import SpaceMap
    from spatial.nerf.model import NerfModel
    from spatial.training.run_folder import config_from_dict

    try:
        config: NerfTrainConfig = config_from_dict(NerfTrainConfig, payload["config"])
        with torch.device(device):  # its weights are replaced by the checkpoint's at once
            model = NerfModel(SpaceMap.from_state(payload["space"]).to(device), config.model, payload["num_images"])
        model.load_state_dict(payload["model"])
    except (KeyError, RuntimeError, TypeError) as e:
        raise file_error(checkpoint, f"not a readable NeRF checkpoint ({e})") from None
    return TrainedNerf(model.to(device).eval(), checkpoint, downscale=config.downscale)


METHOD = Method(
    name="nerf",
    summary="Train a NeRF (nerfacto-style: hash grids, proposal sampling) on a scene; writes checkpoints and "
            "eval.json.",
    config_type=NerfTrainConfig,
    trainer=NerfTrainer,
    load=load_nerf,
    steps=lambda config: config.steps,
)
