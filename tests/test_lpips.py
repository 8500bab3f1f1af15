"""LPIPS from local weights only: found or explained, equal to the `lpips` package where that can run here."""

import importlib.util

import pytest
import torch

from spatial.lpips import ALEXNET_FILE, CONVS, LINEAR_FILE, LPIPS, find_weights


def fake_weights(folder, generator, broken=False):
    """Files laid out as torchvision's AlexNet and LPIPS's linear layers, with random numbers."""
    features, linear, channels = {}, {}, 3
    for index, (layer, out, kernel, _, _) in enumerate(CONVS):
        features[f"features.{layer}.weight"] = torch.randn(out, channels, kernel, kernel, generator=generator) * 0.05
        features[f"features.{layer}.bias"] = torch.zeros(out if not broken else out + 1)
        linear[f"lin{index}.model.1.weight"] = torch.rand(1, out, 1, 1, generator=generator)
        channels = out
    torch.save(features, folder / ALEXNET_FILE)
    torch.save(linear, folder / LINEAR_FILE)


@pytest.fixture
def no_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SPATIAL_LPIPS_DIR", raising=False)


def test_missing_weights_are_named_and_lpips_is_null_in_eval_json(orbit_path, tmp_path, no_torch_cache):
    from spatial import load_scene
    from spatial.splats.trainer import SplatTrainer
    from tests.helpers import small_config

    reason = find_weights()
    assert isinstance(reason, str) and ALEXNET_FILE in reason and "never downloaded" in reason
    result = SplatTrainer(load_scene(orbit_path), small_config(1), tmp_path / "run").evaluate()
    assert result["lpips"] is None and result["lpips_note"] == reason


def test_weights_from_spatial_lpips_dir_give_a_distance(orbit_path, tmp_path, no_torch_cache, monkeypatch):
    from spatial import load_scene
    from spatial.splats.trainer import SplatTrainer
    from tests.helpers import small_config

    fake_weights(tmp_path, torch.Generator().manual_seed(0))
    monkeypatch.setenv("SPATIAL_LPIPS_DIR", str(tmp_path))
    assert find_weights() == (tmp_path / ALEXNET_FILE, tmp_path / LINEAR_FILE)
    metric = LPIPS(*find_weights())
    a, b = torch.rand(64, 80, 3), torch.rand(64, 80, 3)
    assert metric(a, a) == 0
    assert metric(a, b) > 0 and metric(a, b) == pytest.approx(metric(b, a), rel=1e-5)
    assert metric(a, (a + 0.05 * (b - a))) < metric(a, b)
    result = SplatTrainer(load_scene(orbit_path), small_config(1), tmp_path / "run").evaluate()
    assert result["lpips"] > 0 and "lpips_note" not in result


def test_weights_of_the_wrong_shape_are_refused(orbit_path, tmp_path, no_torch_cache, monkeypatch):
    from spatial import load_scene
    from spatial.splats.trainer import SplatTrainer
    from tests.helpers import small_config

    fake_weights(tmp_path, torch.Generator().manual_seed(0), broken=True)
    monkeypatch.setenv("SPATIAL_LPIPS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="not AlexNet LPIPS weights"):
        LPIPS(*find_weights())
    result = SplatTrainer(load_scene(orbit_path), small_config(1), tmp_path / "run").evaluate()
    assert result["lpips"] is None and "could not be read" in result["lpips_note"]


def test_equal_to_the_lpips_package_on_image_pairs():
    found = find_weights()
    if isinstance(found, str):
        pytest.skip(found)
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("the lpips package is not installed")
    try:
        import lpips
    except Exception as error:  # it imports torchvision, which may not run against this torch
        pytest.skip(f"the lpips package does not import here: {error}")
    reference = lpips.LPIPS(net="alex", version="0.1", verbose=False)
    ours = LPIPS(*found)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        a = torch.rand(96, 128, 3, generator=generator)
        b = (a + 0.2 * torch.randn(96, 128, 3, generator=generator)).clamp(0, 1)
        expected = reference(a.permute(2, 0, 1)[None] * 2 - 1, b.permute(2, 0, 1)[None] * 2 - 1).item()
        assert ours(a, b) == pytest.approx(expected, rel=1e-4, abs=1e-6)
