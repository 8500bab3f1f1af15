"""Scene folders across tools, proven with the peers' own readers.

nerfstudio 1.1.5 runs in a virtual environment of its own (scripts/nerfstudio_env.sh: it pins numpy<2, viser 0.2.7
and gsplat 1.4), through tests/interop/nerfstudio_probe.py. For every layout spatial writes, each of nerfstudio's
two readers that splatfacto uses (`NerfstudioDataParser` on transforms.json, `ColmapDataParser` on sparse/0, both
with `load_3D_points=True`) reads train, val and test, and we check: the image lists against our split, the
intrinsics, the camera poses and the points against ours after one similarity (nerfstudio re-centres, re-orients
and rescales), and a batch drawn by splatfacto's full-image data manager against the image file. The probe stops
before the model: nerfstudio's model constructors download LPIPS weights, which no machine here can fetch.

The other way, nerfstudio's own converter (`colmap_to_json`, what ns-process-data runs) writes a transforms.json
from our COLMAP model, with and without masks and depth files, and spatial reads the same cameras from it.

And every layout that claims the 3DGS reference layout holds it: images/ beside sparse/0, PINHOLE or SIMPLE_PINHOLE
cameras (the reference loader rejects the others), image names equal to the files, points3D present.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import torch
from PIL import Image
from scipy.spatial import cKDTree

from spatial.cli import main
from spatial.io import load_colmap, load_scene, load_transforms
from spatial.io.colmap import read_model, write_model
from spatial.process.alignment import pose_errors, umeyama
from spatial.process.pipeline import process_images, process_video
from spatial.scenes import make_scene
from spatial.scenes.config import SceneSize
from tests.captures import SFM_SIZE, dolly_video, scene_photos
from tests.interop_tools import nerfstudio

pytestmark = pytest.mark.slow

# every layout spatial writes, and which of nerfstudio's readers apply to it
LAYOUTS = {
    "process-images": ("nerfstudio", "colmap"),
    "process-video": ("nerfstudio", "colmap"),
    "process-import": ("nerfstudio", "colmap"),
    "convert-nerfstudio": ("nerfstudio",),  # from the Blender-layout orbit scene: RGBA images
    "convert-colmap": ("colmap",),
    "convert-colmap-text": ("colmap",),
    "convert-colmap-odd": ("colmap",),  # from the facade at 65x49: odd sides, where rounding and flooring differ
    # convert-colmap with its image ids in reverse name order, as structure from motion may leave them: nerfstudio's
    # COLMAP reader must still hold out our views (it reads our split lists; without them it counts in id order)
    "colmap-ids-reversed": ("colmap",),
}
JOBS = [(layout, parser) for layout, parsers in LAYOUTS.items() for parser in parsers]
# nerfstudio loads images_N/ when images are over 1600 pixels: ours must be the size its cameras say
DOWNSCALED = [("process-images", "nerfstudio"), ("process-images", "colmap"), ("convert-colmap-odd", "colmap")]
CLAIM_3DGS = ["process-images", "process-video", "process-import", "convert-colmap", "convert-colmap-text",
              "convert-colmap-odd"]
GL_FROM_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    """Each layout as a user makes it (about 20 s, SfM included)."""
    root = tmp_path_factory.mktemp("layouts")
    scene_photos("facade", SFM_SIZE, root / "photos")
    process_images(root / "photos", root / "process-images")
    dolly_video(root / "dolly.mp4")
    process_video(root / "dolly.mp4", root / "process-video", frames=16)
    facade, orbit = make_scene("facade", "test"), make_scene("orbit", "test")
    main(["process", "import", str(facade), str(root / "process-import")])
    main(["scene", "convert", str(orbit), str(root / "convert-nerfstudio"), "--to", "nerfstudio"])
    main(["scene", "convert", str(facade), str(root / "convert-colmap"), "--to", "colmap"])
    main(["scene", "convert", str(facade), str(root / "convert-colmap-text"), "--to", "colmap-text"])
    odd = make_scene("facade", SceneSize(width=65, height=49, views=16, supersample=1, points=500))
    main(["scene", "convert", str(odd), str(root / "convert-colmap-odd"), "--to", "colmap"])
    shutil.copytree(root / "convert-colmap", root / "colmap-ids-reversed")
    model = read_model(root / "colmap-ids-reversed")
    count = len(model.images)
    model.images = {count + 1 - i: replace(im, id=count + 1 - i) for i, im in model.images.items()}
    write_model(model, root / "colmap-ids-reversed" / "sparse" / "0")
    return {name: root / name for name in LAYOUTS}


@pytest.fixture(scope="module")
def nerfstudio_read(layouts, tmp_path_factory) -> tuple[dict, Path]:
    """nerfstudio's report on every (layout, reader), from one run of the probe."""
    out = tmp_path_factory.mktemp("nerfstudio")
    jobs = [{"name": f"{layout}.{parser}", "data": str(layouts[layout]), "parser": parser} for layout, parser in JOBS]
    jobs += [{"name": f"{layout}.{parser}.half", "data": str(layouts[layout]), "parser": parser, "downscale": 2}
             for layout, parser in DOWNSCALED]
    (out / "jobs.json").write_text(json.dumps(jobs))
    nerfstudio("parse", out / "jobs.json", out)
    return json.loads((out / "report.json").read_text()), out


def read_by_both(nerfstudio_read, layouts, layout: str, parser: str, job: str):
    """nerfstudio's report of `job` (it must have read the folder), the folder, our scene of the same files and
    its image names relative to the folder."""
    report, out = nerfstudio_read
    entry = report[job]
    assert entry["error"] is None, f"nerfstudio's {parser} reader failed on {job}:\n{entry['error']}"
    folder = layouts[layout]
    ours = load_transforms(folder) if parser == "nerfstudio" else load_colmap(folder)
    return entry, out, folder, ours, [p.relative_to(folder).as_posix() for p in ours.image_paths]


@pytest.mark.parametrize("layout, parser", JOBS)
def test_nerfstudio_reads_every_layout_we_write(layout, parser, layouts, nerfstudio_read):
    entry, out, folder, ours, names = read_by_both(nerfstudio_read, layouts, layout, parser, f"{layout}.{parser}")
    index = {name: i for i, name in enumerate(names)}

    # the split: ours, with the held-out views as nerfstudio's val split too (its COLMAP reader lists them in the
    # model's image-id order)
    for split, ids in (("train", ours.train_ids), ("val", ours.test_ids), ("test", ours.test_ids)):
        assert sorted(entry[split]["image_filenames"]) == [names[i] for i in ids], split
    assert len(ours.test_ids) > 0

    # intrinsics, per image of every split
    cams = ours.cameras
    for split in ("train", "test"):
        theirs = entry[split]
        ids = [index[name] for name in theirs["image_filenames"]]
        for key, values in (("fx", cams.K[:, 0, 0]), ("fy", cams.K[:, 1, 1]), ("cx", cams.K[:, 0, 2]),
                            ("cy", cams.K[:, 1, 2])):
            np.testing.assert_allclose(theirs[key], values[ids].numpy(), rtol=1e-6, atol=1e-4, err_msg=key)
        assert theirs["width"] == cams.width[ids].tolist() and theirs["height"] == cams.height[ids].tolist()
        # nerfstudio's [k1, k2, k3, k4, p1, p2]; our pinhole layouts have none
        assert np.abs(theirs["distortion_params"]).max() == 0 and cams.dist.abs().max() == 0

    # poses: theirs are ours after one similarity (nerfstudio's orientation, centring and scale), OpenGL axes
    all_names = entry["train"]["image_filenames"] + entry["test"]["image_filenames"]
    ids = [index[name] for name in all_names]
    theirs = torch.eye(4, dtype=torch.float64).repeat(len(ids), 1, 1)
    theirs[:, :3] = torch.tensor(entry["train"]["camera_to_worlds"] + entry["test"]["camera_to_worlds"])
    theirs = theirs @ GL_FROM_CV  # to OpenCV axes, like ours
    errors = pose_errors(cams.cam_to_world[ids].double(), theirs)
    assert errors["center_error_max"] < 1e-4, errors  # of the extent
    assert errors["rotation_error_max_deg"] < 1e-3, errors

    # the sparse points, moved by the same similarity
    their_points = np.load(out / f"{layout}.{parser}.points.npy")
    assert their_points.shape == tuple(ours.points.shape) and len(their_points) > 0
    s, R, t = umeyama(cams.cam_to_world[ids, :3, 3], theirs[:, :3, 3])
    moved = (s * ours.points.double() @ R.T + t).numpy()
    extent = float(torch.cdist(theirs[:, :3, 3], theirs[:, :3, 3]).max())
    assert cKDTree(their_points).query(moved)[0].max() < 1e-4 * extent

    # splatfacto's data manager draws a training image: the file itself, at our camera's size
    batch = entry["batch"]
    assert batch["image_filename"] in entry["train"]["image_filenames"]
    i = index[batch["image_filename"]]
    pixels = np.load(out / f"{layout}.{parser}.batch.npy")
    assert (batch["width"], batch["height"]) == (int(cams.width[i]), int(cams.height[i]))
    np.testing.assert_array_equal(pixels, np.asarray(Image.open(folder / batch["image_filename"])))


@pytest.mark.parametrize("layout, parser", DOWNSCALED)
def test_nerfstudio_loads_our_downscaled_copies_at_the_size_it_expects(layout, parser, layouts, nerfstudio_read):
    entry, out, folder, ours, names = read_by_both(nerfstudio_read, layouts, layout, parser,
                                                   f"{layout}.{parser}.half")
    half = ours.downscaled(2)
    for split in ("train", "test"):
        ids = [names.index(name.replace("images_2/", "images/")) for name in entry[split]["image_filenames"]]
        assert entry[split]["width"] == half.cameras.width[ids].tolist(), split
        assert entry[split]["height"] == half.cameras.height[ids].tolist(), split
    batch = entry["batch"]
    assert batch["image_filename"].startswith("images_2/")
    pixels = np.load(out / f"{layout}.{parser}.half.batch.npy")
    assert pixels.shape[:2] == (batch["height"], batch["width"])
    np.testing.assert_array_equal(pixels, np.asarray(Image.open(folder / batch["image_filename"])))
    if layout == "convert-colmap-odd":
        assert (batch["width"], batch["height"]) == (32, 24)  # 65x49 halved, rounded down


@pytest.fixture(scope="module")
def converted_by_nerfstudio(layouts, tmp_path_factory) -> dict[str, Path]:
    """transforms.json written by nerfstudio's colmap_to_json from our COLMAP model: as it is, with a camera mask,
    and with a depth file per image."""
    source = layouts["convert-colmap"]
    found = {}
    for variant in ("plain", "mask", "depth"):
        folder = tmp_path_factory.mktemp(f"ns-{variant}")
        shutil.copytree(source / "images", folder / "images")
        extra = []
        if variant == "mask":
            (folder / "masks").mkdir()
            Image.new("L", (64, 48), 255).save(folder / "masks" / "mask.png")
            extra = ["--mask", folder / "masks" / "mask.png"]
        if variant == "depth":
            (folder / "depths").mkdir()
            for image in (folder / "images").iterdir():
                Image.new("I;16", (64, 48), 1000).save(folder / "depths" / f"{image.stem}.png")
            extra = ["--depth-dir", folder / "depths"]
        assert nerfstudio("colmap-to-json", source / "sparse" / "0", folder, *extra).split()[-1] == "16"
        found[variant] = folder
    return found


@pytest.mark.parametrize("variant", ["plain", "mask", "depth"])
def test_we_read_what_nerfstudio_converts_from_our_colmap_model(variant, layouts, converted_by_nerfstudio, capsys):
    folder = converted_by_nerfstudio[variant]
    meta = json.loads((folder / "transforms.json").read_text())
    assert "applied_transform" in meta and "colmap_im_id" in meta["frames"][0]  # nerfstudio's own output
    theirs, ours = load_scene(folder), load_colmap(layouts["convert-colmap"])
    assert theirs.source_format == "nerfstudio"
    assert theirs.image_names == ours.image_names
    torch.testing.assert_close(theirs.cameras.cam_to_world, ours.cameras.cam_to_world, atol=1e-5, rtol=0)
    torch.testing.assert_close(theirs.cameras.K, ours.cameras.K, atol=1e-5, rtol=0)
    assert torch.equal(theirs.cameras.width, ours.cameras.width)
    assert torch.equal(theirs.cameras.height, ours.cameras.height)
    torch.testing.assert_close(theirs.points, ours.points, atol=1e-5, rtol=0)  # nerfstudio writes 6 decimals
    assert torch.equal(theirs.point_colors, ours.point_colors)
    main(["scene", "info", str(folder)])
    printed = capsys.readouterr().out
    assert "16 (14 train, 2 test)" in printed
    listed = {"plain": None, "mask": "masks (mask_path)", "depth": "depth maps (depth_file_path)"}[variant]
    if listed:
        assert f"note: transforms.json lists {listed} for 16 of 16 images; spatial reads the cameras and trains " \
               "on every pixel without them" in " ".join(printed.split())
    else:
        assert "note:" not in printed


def test_we_train_on_what_nerfstudio_converts(converted_by_nerfstudio, tmp_path):
    out = tmp_path / "run"
    main(["train", "splat", str(converted_by_nerfstudio["plain"]), "--preset", "cpu", "--step.steps", "3",
          "--out", str(out)])
    assert (out / "splats.ply").is_file()


@pytest.mark.parametrize("layout", CLAIM_3DGS)
def test_layouts_hold_the_3dgs_reference_layout(layout, layouts):
    """What the 3DGS reference loader (scene/dataset_readers.py, readColmapSceneInfo) and gsplat's example
    parser need: sparse/0 beside images/, PINHOLE or SIMPLE_PINHOLE cameras, each image named as its file
    (the reference joins images/ with the name's basename; gsplat pairs the sorted names with the sorted files
    of images/, so the folder holds the model's images and nothing else), and points3D with points."""
    folder = layouts[layout]
    model_dir = folder / "sparse" / "0"
    kind = "bin" if (model_dir / "cameras.bin").is_file() else "txt"
    for name in ("cameras", "images", "points3D"):
        assert (model_dir / f"{name}.{kind}").is_file(), name
    model = pycolmap.Reconstruction(str(model_dir))
    assert {camera.model.name for camera in model.cameras.values()} <= {"PINHOLE", "SIMPLE_PINHOLE"}
    names = sorted(image.name for image in model.images.values())
    assert all(Path(name).name == name for name in names)
    assert names == sorted(p.name for p in (folder / "images").iterdir())
    assert model.num_points3D() > 0
