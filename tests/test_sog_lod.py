"""Streamed SOG (spatial/formats/sog_lod.py): levels of detail in chunks, read back by us and by splat-transform."""

from __future__ import annotations

import json

import pytest
import torch

from spatial import SpatialError
from spatial.formats import load_splats, save_splats, sog, sog_lod
from tests.helpers import random_splat_params
from tests.interop_tools import assert_close_splats, splat_transform

SOG = {"position": 1e-4, "colour": 0.01, "opacity": 1 / 255, "log_scale": 0.02, "rotation_deg": 2.0}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    world = random_splat_params(3000, sh_degree=1, seed=4)
    world["opacities"] = world["opacities"].clamp(-4, 4)
    levels = sog_lod.levels_of(world, 3)
    path = tmp_path_factory.mktemp("lod") / "world" / "lod-meta.json"
    sog.save_levels(levels, path, chunk=700)  # small chunks: several leaves and units per level
    return levels, path


def test_levels_halve_and_each_reads_back_within_quantisation(written):
    levels, path = written
    assert [lv["means"].shape[0] for lv in levels] == [3000, 1500, 750]
    meta = json.loads(path.read_text())
    assert meta["counts"] == [3000, 1500, 750] and meta["lodLevels"] == 3 and meta["count"] == 5250
    assert {"0_0/meta.json", "0_1/meta.json", "1_0/meta.json", "2_0/meta.json"} <= set(meta["filenames"])

    def leaves(node):
        return [node] if "lods" in node else [leaf for child in node["children"] for leaf in leaves(child)]

    found = leaves(meta["tree"])
    assert len(found) >= 4 and all(sum(ref["count"] for ref in leaf["lods"].values()) <= 700 for leaf in found)
    for level, params in enumerate(levels):
        back = sog.load_level(path, level)
        assert_close_splats(params, back, SOG, match=True)
        # every leaf's range (units are read in file order) holds Gaussians inside the leaf's bound
        units = sorted({leaf["lods"][str(level)]["file"] for leaf in found if str(level) in leaf["lods"]})
        held = {f: json.loads((path.parent / meta["filenames"][f]).read_text())["count"] for f in units}
        for leaf in found:
            ref = leaf["lods"].get(str(level))
            if ref is not None:
                start = sum(held[f] for f in units if f < ref["file"]) + ref["offset"]
                centres = back["means"][start:start + ref["count"]]
                assert bool((centres >= torch.tensor(leaf["bound"]["min"]) - 1e-3).all())
                assert bool((centres <= torch.tensor(leaf["bound"]["max"]) + 1e-3).all())
    assert load_splats(path)["means"].shape[0] == 3000  # a streamed SOG opens at its finest level


def test_splat_transform_reads_every_level(written, tmp_path):
    levels, path = written
    for level in range(3):
        splat_transform("-L", str(level), path, tmp_path / f"level{level}.ply")
        theirs = load_splats(tmp_path / f"level{level}.ply")
        ours = sog.load_level(path, level)
        assert theirs["means"].shape[0] == levels[level]["means"].shape[0]
        assert_close_splats(ours, theirs, {**SOG, "position": 1e-5, "colour": 1e-4, "log_scale": 1e-4,
                                           "rotation_deg": 0.1}, match=True)


def test_a_hostile_lod_meta_is_refused_in_one_line(written, tmp_path):
    _, path = written
    meta = json.loads(path.read_text())

    def refused(change, message):
        bad = json.loads(json.dumps(meta))
        change(bad)
        target = path.parent / "bad-lod-meta.json"
        target.write_text(json.dumps(bad))
        with pytest.raises(SpatialError, match=message):
            sog.load_level(target)

    refused(lambda m: m["filenames"].__setitem__(0, "../../elsewhere/meta.json"), r"leads outside")
    refused(lambda m: m.__setitem__("counts", [1, 2, 3]), r"its counts say \[1, 2, 3\] Gaussians per level, but "
                                                          r"its tree places 3000 in level 0")
    refused(lambda m: m.__setitem__("lodLevels", 10**6), r"lodLevels must be 1 to 16")
    refused(lambda m: m.__setitem__("tree", {"lods": {"0": {"file": 99, "offset": 0, "count": 5}}}),
            r"a level-0 reference .* is not a file, offset and count within the file list")
    refused(lambda m: m.__setitem__("tree", {"lods": {"0": {"file": 0, "offset": 0, "count": 5}}, "children": []}),
            r"its counts say|places 5 Gaussians of level 0 in 0_0/meta.json")
    with pytest.raises(SpatialError, match=r"has levels 0 to 2; there is no level 3"):
        sog.load_level(path, 3)


def test_export_sog_lod_writes_a_folder(trained_run, tmp_path, capsys):
    from spatial.cli import main

    main(["export", "sog", str(trained_run), "--lod", "2", "--refine-steps", "0", "--out",
          str(tmp_path / "w" / "lod-meta.json")])
    meta = json.loads((tmp_path / "w" / "lod-meta.json").read_text())
    assert meta["lodLevels"] == 2 and meta["counts"][1] == meta["counts"][0] // 2
    with pytest.raises(SystemExit):
        main(["export", "sog", str(trained_run), "--lod", "2", "--out", str(tmp_path / "w.sog")])
    assert "levels of detail are written as a folder: name it FOLDER/lod-meta.json" in \
        " ".join(capsys.readouterr().err.split())
    save_splats(load_splats(tmp_path / "w" / "lod-meta.json"), tmp_path / "finest.ply")
    assert load_splats(tmp_path / "finest.ply")["means"].shape[0] == meta["counts"][0]
