"""Runs inside nerfstudio's own virtual environment (scripts/nerfstudio_env.sh), never in ours: nerfstudio
1.1.5 pins numpy<2, viser 0.2.7 and gsplat 1.4. tests/test_interop_nerfstudio.py calls it and compares
what nerfstudio's code reads with what spatial reads.

    python nerfstudio_probe.py parse JOBS.json OUT/
        JOBS.json: [{"name": ..., "data": FOLDER, "parser": "nerfstudio" | "colmap", "downscale": N?}, ...]
        For each job and each split (train, val, test), nerfstudio's own dataparser, configured as
        splatfacto configures it (`load_3D_points=True`), reads the folder; then splatfacto's full-image
        data manager is set up on it and draws one training batch. Writes OUT/report.json and, per job,
        OUT/<name>.points.npy and OUT/<name>.batch.npy (the drawn image, uint8 [H, W, 3]).
        It stops before the model: nerfstudio's model constructors download LPIPS weights, which no
        machine here can fetch.

    python nerfstudio_probe.py colmap-to-json SPARSE_DIR OUT_DIR [--mask MASK.png] [--depth-dir DIR]
        nerfstudio's own converter (`colmap_to_json`, as ns-process-data runs it) writes OUT_DIR/transforms.json
        and sparse_pc.ply from a binary COLMAP model; --mask lists one mask for every frame, --depth-dir a
        depth file per image (DIR/<image stem>.png).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np


def parser_config(job: dict):
    """`downscale`: the factor nerfstudio picks by itself for images over 1600 pixels, which loads `images_N/`."""
    data, downscale = Path(job["data"]), job.get("downscale")
    if job["parser"] == "nerfstudio":
        from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

        return NerfstudioDataParserConfig(data=data, load_3D_points=True, downscale_factor=downscale)
    from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParserConfig

    # our layout keeps the model in sparse/0, where nerfstudio's default is colmap/sparse/0
    return ColmapDataParserConfig(data=data, colmap_path=Path("sparse/0"), load_3D_points=True,
                                  downscale_factor=downscale)


def split_report(outputs, data: Path) -> dict:
    cams = outputs.cameras
    return {
        "image_filenames": [Path(p).relative_to(data).as_posix() for p in outputs.image_filenames],
        "camera_to_worlds": cams.camera_to_worlds.double().tolist(),  # [N, 3, 4], OpenGL axes
        "fx": cams.fx.reshape(-1).tolist(), "fy": cams.fy.reshape(-1).tolist(),
        "cx": cams.cx.reshape(-1).tolist(), "cy": cams.cy.reshape(-1).tolist(),
        "width": cams.width.reshape(-1).tolist(), "height": cams.height.reshape(-1).tolist(),
        "distortion_params": cams.distortion_params.tolist(),
        "camera_type": [int(t) for t in cams.camera_type.reshape(-1)],
        "dataparser_scale": float(outputs.dataparser_scale),
        "mask_filenames": None if outputs.mask_filenames is None else len(outputs.mask_filenames),
    }


def parse(jobs_file: Path, out: Path) -> None:
    from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanagerConfig

    report = {}
    for job in json.loads(jobs_file.read_text()):
        data, name = Path(job["data"]), job["name"]
        try:
            parser = parser_config(job).setup()
            splits = {split: parser.get_dataparser_outputs(split=split) for split in ("train", "val", "test")}
            entry = {split: split_report(outputs, data) for split, outputs in splits.items()}
            points = splits["train"].metadata.get("points3D_xyz")
            np.save(out / f"{name}.points.npy", np.zeros((0, 3)) if points is None else points.double().numpy())
            # splatfacto's data manager (full images, uint8 cache). Its "gpu" cache means "on the manager's
            # device", here the CPU; its "cpu" cache pins memory, which needs a CUDA driver.
            manager = FullImageDatamanagerConfig(dataparser=parser_config(job), cache_images="gpu",
                                                 cache_images_type="uint8").setup(device="cpu", test_mode="val")
            camera, batch = manager.next_train(0)
            index = camera.metadata["cam_idx"]
            image = batch["image"].numpy()
            np.save(out / f"{name}.batch.npy", image)
            entry["batch"] = {"image_filename": Path(manager.train_dataset.image_filenames[index]).relative_to(
                data).as_posix(), "shape": list(image.shape), "dtype": str(image.dtype),
                "width": int(camera.width), "height": int(camera.height)}
            entry["error"] = None
        except Exception:  # noqa: BLE001 - the test prints nerfstudio's own failure
            entry = {"error": traceback.format_exc()}
        report[name] = entry
    (out / "report.json").write_text(json.dumps(report))


def colmap_to_json(sparse: Path, out: Path, mask: Path | None, depth_dir: Path | None) -> None:
    from nerfstudio.data.utils.colmap_parsing_utils import read_images_binary
    from nerfstudio.process_data.colmap_utils import colmap_to_json as convert

    depths = None
    if depth_dir is not None:
        images = read_images_binary(sparse / "images.bin")
        depths = {i: depth_dir / f"{Path(im.name).stem}.png" for i, im in images.items()}
    count = convert(recon_dir=sparse, output_dir=out, camera_mask_path=mask, image_id_to_depth_path=depths)
    print(count)


def main(argv: list[str]) -> None:
    if argv[0] == "parse":
        parse(Path(argv[1]), Path(argv[2]))
    elif argv[0] == "colmap-to-json":
        options = dict(zip(argv[3::2], argv[4::2]))
        colmap_to_json(Path(argv[1]), Path(argv[2]), Path(options["--mask"]) if "--mask" in options else None,
                       Path(options["--depth-dir"]) if "--depth-dir" in options else None)
    else:
        sys.exit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
