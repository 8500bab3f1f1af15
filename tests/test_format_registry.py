"""A splat format is one module plus one registry line: a toy format registered here, in the test process,
is read and written by `load_splats`/`save_splats`, `load_model`, `spatial export` and `spatial view`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spatial import SpatialError, load_model, load_splats, save_splats
from spatial.formats import SPLAT_FORMATS, SplatFormat, register_splat_format
from tests.helpers import random_splat_params

TOY = SplatFormat(".toy", "toy", "a toy format for this test: the raw parameters in a NumPy .npz", __name__)


# ---- the toy format's module interface: load(path) and save(params, path, context) -------------
CONTEXTS = []  # what each save was given


def save(params: dict[str, torch.Tensor], path: Path, context=None) -> None:
    CONTEXTS.append(context)
    with open(path, "wb") as f:  # np.savez adds .npz to a bare name; a file object keeps ours
        np.savez(f, **{k: v.detach().cpu().numpy() for k, v in params.items()})


def load(path: Path) -> dict[str, torch.Tensor]:
    with np.load(path, allow_pickle=False) as data:
        return {k: torch.from_numpy(data[k].copy()) for k in data.files}


@pytest.fixture
def toy_format():
    register_splat_format(TOY)
    yield TOY
    del SPLAT_FORMATS[TOY.suffix]


def test_a_registered_format_round_trips_through_the_api(toy_format, tmp_path):
    params = random_splat_params(50, sh_degree=1, seed=3)
    save_splats(params, tmp_path / "a.toy")
    loaded = load_splats(tmp_path / "a.toy")
    for k in params:
        torch.testing.assert_close(loaded[k], params[k], rtol=0, atol=0)
    model = load_model(tmp_path / "a.toy")
    assert model.count == 50 and model.sh_degree == 1


def test_the_cli_exports_and_the_viewer_opens_a_registered_format(toy_format, trained_run, tmp_path, capsys):
    from spatial.cli import main
    from spatial_viewer.cli import build_app

    CONTEXTS.clear()
    main(["export", "toy", str(trained_run), "--out", str(tmp_path / "run.toy"), "--min-opacity", "0.01"])
    assert "wrote" in capsys.readouterr().out
    # the export context reaches the format: no options of its own, and the run's training cameras on request
    [context] = CONTEXTS
    assert context.options is None
    assert len(context.training_cameras()) == len(load_model(trained_run).training_cameras())
    exported = load_splats(tmp_path / "run.toy")
    direct = load_model(trained_run).params
    kept = torch.sigmoid(direct["opacities"]) >= 0.01
    torch.testing.assert_close(exported["means"], direct["means"][kept], rtol=0, atol=0)
    with pytest.raises(SystemExit):  # the group's help lists it
        main(["export", "--help"])
    assert "toy  " in capsys.readouterr().out and "a toy format for this test" not in ""

    main(["export", "toy", str(tmp_path / "run.toy"), "--out", str(tmp_path / "again.toy")])
    assert CONTEXTS[-1].training_cameras() is None  # a splat file knows no cameras

    app = build_app([tmp_path / "run.toy"], tmp_path / "edited.toy", thumbnails=False)
    assert [layer.count for layer in app.world.layers] == [int(kept.sum())]
    assert app.world.save_splats(tmp_path / "edited.toy") == int(kept.sum())
    assert load_splats(tmp_path / "edited.toy")["means"].shape == (int(kept.sum()), 3)


def test_without_registration_the_suffix_is_refused_by_name(tmp_path):
    (tmp_path / "a.toy").write_bytes(b"")
    endings = r"\.ply, \.splat, \.compressed\.ply, \.sog, meta\.json, lod-meta\.json, \.glb, \.html, \.spz"
    with pytest.raises(SpatialError, match=rf"unknown splat format '\.toy'; choose from {endings}$"):
        load_splats(tmp_path / "a.toy")
    with pytest.raises(SpatialError, match="unknown model file type '.toy'"):
        load_model(tmp_path / "a.toy")
