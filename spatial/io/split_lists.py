"""nerfstudio's split lists for COLMAP folders: `train_list.txt`, `val_list.txt` and `test_list.txt` beside
`sparse/`, one image name (relative to `images/`) a line.

nerfstudio's COLMAP reader takes its split from them. Without them it holds out every 8th image in the model's
image-id order, which after structure from motion is not the name order that spatial, the 3DGS code and gsplat
hold out by, so the two would evaluate on different views. Once one list is present it needs one for every split
its trainer asks for, `val` included: we write the held-out views as both `val` and `test`.
"""

from __future__ import annotations

from pathlib import Path

from spatial.errors import SpatialError, file_error
from spatial.files import write_bytes_atomic

MAX_LIST_BYTES = 64 << 20


def write_split_lists(folder: Path, names: list[str], train_ids: list[int], test_ids: list[int]) -> None:
    try:
        for split, ids in (("train", train_ids), ("val", test_ids), ("test", test_ids)):
            write_bytes_atomic(folder / f"{split}_list.txt", "".join(f"{names[i]}\n" for i in ids).encode())
    except OSError as e:
        raise SpatialError(f"{folder}: cannot write the split lists ({e.strerror})") from None


def read_split_lists(folder: Path, names: list[str]) -> tuple[list[int], list[int]] | None:
    """Train and test ids from `train_list.txt` and `test_list.txt`, or None when the folder has neither."""
    files = [folder / "train_list.txt", folder / "test_list.txt"]
    if not any(f.is_file() for f in files):
        return None
    index = {name: i for i, name in enumerate(names)}
    splits = []
    for file, other in zip(files, reversed(files)):
        if not file.is_file():
            raise file_error(file, f"missing: a scene folder with {other.name} needs both train_list.txt and "
                                   "test_list.txt")
        if file.stat().st_size > MAX_LIST_BYTES:
            raise file_error(file, f"is {file.stat().st_size >> 20} MB, too large for a list of image names")
        try:
            lines = file.read_bytes().decode("utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise file_error(file, f"not UTF-8 text (byte {e.start}); expected one image name a line") from None
        ids = []
        for line in filter(None, (line.strip() for line in lines)):
            if line not in index:
                raise file_error(file, f"lists {line[:200]!r}, which is not an image of the scene")
            ids.append(index[line])
        splits.append(sorted(set(ids)))
    return splits[0], splits[1]
