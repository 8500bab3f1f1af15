"""Feature matchers: which pairs of images in COLMAP's database are matched, and matched.

A matcher is a function `(job) -> None` named in `MATCHERS` (and so in `SfMConfig.matcher`'s choices); it
matches the features `job.database` holds for `job.capture`'s images, by `job.config` (settled for the capture).
`job` is a `spatial.process.sfm.SfMJob`: feature extraction before it and the mapper after it are the other
stages there. Both of today's matchers are pycolmap's.
"""

from __future__ import annotations

from spatial.errors import SpatialError

PHOTO_SET_EXHAUSTIVE = 200
"""Photos above which `matcher="auto"` matches sequentially (exhaustive matching's pairs grow with the square)."""


def matcher_for(matcher: str, sequence: bool, count: int) -> str:
    """`auto`: sequential for a video's frames and for photo sets above PHOTO_SET_EXHAUSTIVE, else exhaustive."""
    if matcher != "auto":
        return matcher
    return "sequential" if sequence or count > PHOTO_SET_EXHAUSTIVE else "exhaustive"


def exhaustive(job) -> None:
    """Every pair: the most robust, for photo sets taken in no particular order."""
    import pycolmap

    pycolmap.match_exhaustive(job.database, device=pycolmap.Device.cpu)


def sequential(job) -> None:
    """Each image with the images 1, 2, 4, ... 2^(overlap-1) after it in name order (a video's frame order), plus
    loop closure with a vocabulary tree when one is given. For incremental mapping of keyframes, a pair list
    that matches the other frames only with their near neighbours (keyframe_pairs)."""
    import pycolmap

    config, names = job.config, job.capture.names
    if config.vocab_tree is None and job.mapper == "incremental" and config.keyframe_step > 1 \
            and not any(" " in name for name in names):  # COLMAP reads a pair list's names up to a space
        pairs = job.work / "pairs.txt"
        pairs.write_text("".join(f"{a} {b}\n" for a, b in keyframe_pairs(
            names, config.keyframe_step, config.sequential_overlap)))
        pycolmap.match_image_pairs(job.database, pairing_options=pycolmap.ImportedPairingOptions(
            match_list_path=str(pairs)), device=pycolmap.Device.cpu)
        return
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = config.sequential_overlap
    if config.vocab_tree is not None:
        check_vocab_tree(config.vocab_tree)
        pairing.loop_detection = True
        pairing.vocab_tree_path = str(config.vocab_tree)
    pycolmap.match_sequential(job.database, pairing_options=pairing, device=pycolmap.Device.cpu)


def keyframe_pairs(names: list[str], step: int, overlap: int) -> list[tuple[str, str]]:
    """Sequential matching's pairs for mapping every `step`th image of `names` (in name order): a keyframe is
    paired with the images 1, 2, 4, ... 2^(overlap-1) after it (COLMAP's quadratic overlap), which the
    keyframes' map is built from; any other image only with those up to 2 * step after it, since it is only
    registered into that map by its matches with its neighbours (150 video frames with step 4: 28% fewer pairs
    than sequential matching makes)."""
    names = sorted(names)
    near = min(overlap, step.bit_length() + 1)  # 1, 2, ... 2 * step
    return [(name, names[i + 2 ** k]) for i, name in enumerate(names)
            for k in range(overlap if i % step == 0 else near) if i + 2 ** k < len(names)]


def check_vocab_tree(tree) -> None:
    """Before anything runs: pycolmap's vocabulary-tree matching aborts the whole process when its file is
    missing, so a named tree must be a readable file here."""
    import os
    from pathlib import Path

    if tree is not None and not (Path(tree).is_file() and os.access(tree, os.R_OK)):
        raise SpatialError(f"{tree}: vocabulary tree not found (spatial never downloads one): pass a local COLMAP "
                           "vocab_tree_*.bin to --vocab-tree, or leave the option out to match without loop closure")


MATCHERS = {"exhaustive": exhaustive, "sequential": sequential}
