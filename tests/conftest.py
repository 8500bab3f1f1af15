"""Shared fixtures: the built-in scenes at test size (rendered once per session) and the real captures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def grad_mode_is_left_as_found():
    """A test must leave torch's grad mode as it found it: a leak (a generator suspended inside `no_grad`) fails
    the test that caused it, not a later one that needs gradients."""
    import torch

    before = torch.is_grad_enabled()
    yield
    after = torch.is_grad_enabled()
    torch.set_grad_enabled(before)
    assert after == before, f"grad mode was {before} before this test and {after} after it"


@pytest.fixture(scope="session", autouse=True)
def scene_cache(tmp_path_factory) -> Path:
    """Keep rendered scenes of this run in a temporary cache, never in the user's home."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("SPATIAL_CACHE_DIR")
    os.environ["SPATIAL_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SPATIAL_CACHE_DIR", None)
    else:
        os.environ["SPATIAL_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def orbit_path(scene_cache) -> Path:
    from spatial.scenes import make_scene

    return make_scene("orbit", "test")


@pytest.fixture(scope="session")
def facade_path(scene_cache) -> Path:
    from spatial.scenes import make_scene

    return make_scene("facade", "test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real captures not found at {SHARED_DATA} (see its README); skipping")
    return SHARED_DATA


@pytest.fixture(scope="session")
def trained_run(orbit_path, tmp_path_factory) -> Path:
    """A run folder as `spatial train splat` writes it: 300 steps on the test-size orbit scene (~25 s)."""
    from spatial.splats.step import StepConfig
    from spatial.splats.strategies import DefaultStrategy
    from spatial.splats.trainer import SplatTrainConfig
    from spatial.training.loop import run_training

    config = SplatTrainConfig(step=StepConfig(steps=300, sh_degree=1, sh_degree_interval=100),
                              strategy=DefaultStrategy(refine_start=30, refine_every=15, refine_stop=225,
                                                       reset_every=0),
                              checkpoint_every=0)
    out = tmp_path_factory.mktemp("run") / "orbit"
    run_training("splat", orbit_path, out, config, resume=False, preset="test")
    return out
