"""`spatial process video`: a synthetic orbit video with blurred frames, rotation metadata, bad files."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatial import SpatialError, load_scene
from spatial.process.alignment import pose_errors
from spatial.process.matchers import keyframe_pairs
from spatial.process.pipeline import process_video
from spatial.process.sfm import SfMConfig, for_capture, video_keyframe_step
from spatial.process.video import extract_frames
from tests.captures import BLURRED, dolly_video, write_video
from tests.captures import VIDEO_FRAMES as FRAMES
from tests.captures import VIDEO_H as H
from tests.captures import VIDEO_W as W


@pytest.fixture(scope="module")
def facade_video(tmp_path_factory):
    """A smooth sideways dolly in front of the facade, every sixth frame blurred on purpose."""
    path = tmp_path_factory.mktemp("video") / "dolly.mp4"
    cams, frames = dolly_video(path)
    return path, cams, frames


def test_video_to_scene_drops_blurred_frames(facade_video, tmp_path, monkeypatch):
    path, truth, _ = facade_video
    calls = _recording_mapping(monkeypatch)
    pairs = _recording_pairs(monkeypatch)
    manifest = process_video(path, tmp_path / "scene", frames=20)
    source = manifest["source"]
    assert source["frames_read"] == FRAMES
    assert set(source["blurred_frames"]) == BLURRED  # every blurred frame, and only those
    assert not set(source["kept_frames"]) & BLURRED and source["frames_kept"] == 20
    assert manifest["images"]["registered"] == 20
    assert manifest["config"]["fast_mapping"] is True  # settled for a video: fewer bundle adjustments
    assert manifest["config"]["max_image_size"] == 1024  # and features found on smaller frames
    assert manifest["config"]["keyframe_step"] == 2  # and every other frame mapped, the rest registered into it
    kept = [f"frame_{index:06d}.jpg" for index in sorted(source["kept_frames"])]
    assert calls == [kept[::2]]  # one mapping, of every other kept frame in order; all 20 registered above
    assert pairs == [keyframe_pairs(kept, 2, 10)]  # matched: the keyframes far, the others only near
    scene = load_scene(tmp_path / "scene")
    ids = [int(name[6:12]) for name in scene.image_names]
    errors = pose_errors(scene.cameras.cam_to_world, truth.cam_to_world[ids])
    # H.264 frames along a nearly straight dolly constrain the fit less than the rendered photos of
    # tests/test_process.py, which are held to the 1% bound.
    assert errors["center_error_max"] < 0.025 and errors["rotation_error_max_deg"] < 1.0


def test_rotation_metadata_is_honoured(facade_video, tmp_path):
    _, _, frames = facade_video
    stored = [np.ascontiguousarray(np.rot90(f, -1)) for f in frames[:4]]  # a phone held sideways
    write_video(tmp_path / "portrait.mp4", stored, rotation=90)
    extracted = extract_frames(tmp_path / "portrait.mp4", tmp_path / "frames", count=2)
    assert extracted.rotation == 90
    upright = np.asarray(Image.open(tmp_path / "frames" / extracted.names[0]))
    assert upright.shape == (H, W, 3)
    assert np.abs(upright.astype(float) - frames[extracted.kept[0]]).mean() < 8  # codec tolerance


def test_short_video_keeps_every_frame_and_says_so(facade_video, tmp_path):
    _, _, frames = facade_video
    write_video(tmp_path / "short.mp4", frames[:4])
    extracted = extract_frames(tmp_path / "short.mp4", tmp_path / "frames", count=50)
    assert extracted.read == 4 and len(extracted.names) == 4


@pytest.mark.parametrize("content, message", [(b"", "the file is empty"), (b"this is not a video" * 50,
                                                                               "not a readable video")])
def test_bad_video_files(tmp_path, content, message):
    (tmp_path / "bad.mp4").write_bytes(content)
    with pytest.raises(SpatialError, match=f"bad.mp4: {message}") as error:
        process_video(tmp_path / "bad.mp4", tmp_path / "out")
    assert "Errno" not in str(error.value)  # FFmpeg's words, not its internal error number
    assert not (tmp_path / "out").exists()  # a failed run leaves no empty folder behind
    with pytest.raises(SpatialError, match="video not found"):
        process_video(tmp_path / "missing.mp4", tmp_path / "out")


def _recording_pairs(monkeypatch):
    """Record the image pairs each call of pycolmap's pair-list matching was given."""
    import pycolmap

    real, calls = pycolmap.match_image_pairs, []

    def matching(database, *args, pairing_options, **kwargs):
        lines = Path(pairing_options.match_list_path).read_text().splitlines()
        calls.append([tuple(line.split()) for line in lines])
        return real(database, *args, pairing_options=pairing_options, **kwargs)

    monkeypatch.setattr(pycolmap, "match_image_pairs", matching)
    return calls


def test_keyframe_pairs_match_keyframes_far_and_the_others_near():
    names = [f"frame_{i:02d}.jpg" for i in range(12)]
    pairs = keyframe_pairs(list(reversed(names)), 4, 10)  # in name order, whatever order they come in
    after = {}
    for a, b in pairs:
        after.setdefault(int(a[6:8]), []).append(int(b[6:8]) - int(a[6:8]))
    assert after[0] == [1, 2, 4, 8] and after[4] == [1, 2, 4] and after[8] == [1, 2]  # keyframes: up to the end
    assert after[1] == after[3] == [1, 2, 4, 8] and after[5] == [1, 2, 4] and after[10] == [1] and 11 not in after
    assert keyframe_pairs(names, 1, 3) == [(a, b) for i, a in enumerate(names) for b in names[i + 1:i + 5]
                                           if names.index(b) - i in (1, 2, 4)]  # step 1: sequential matching's own
    wide = keyframe_pairs([f"{i:03d}" for i in range(40)], 2, 10)
    assert {int(b) - int(a) for a, b in wide if int(a) % 2} == {1, 2, 4}
    assert {int(b) - int(a) for a, b in wide if int(a) % 2 == 0} == {1, 2, 4, 8, 16, 32}


@pytest.mark.parametrize("count, step", [(10, 2), (50, 2), (99, 2), (100, 4), (120, 4), (199, 4), (200, 8)])
def test_a_video_maps_at_least_25_keyframes_and_every_other_frame_at_most(count, step):
    assert video_keyframe_step(count) == step
    assert for_capture(SfMConfig(), True, count).keyframe_step == step
    assert for_capture(SfMConfig(), False, count).keyframe_step == 1  # photo sets: every image
    assert for_capture(SfMConfig(keyframe_step=1), True, count).keyframe_step == 1  # what the user asks for


def _recording_mapping(monkeypatch, keyframe_map_fails=False):
    """Record the image names each call of pycolmap's incremental mapping was given; optionally make the first
    call (the keyframe map) find nothing."""
    import pycolmap

    real, calls = pycolmap.incremental_mapping, []

    def mapping(database, images, out, options, *args, **kwargs):
        calls.append(list(options.image_names))
        if keyframe_map_fails and len(calls) == 1:
            return {}
        return real(database, images, out, options, *args, **kwargs)

    monkeypatch.setattr(pycolmap, "incremental_mapping", mapping)
    return calls


def test_every_frame_is_mapped_when_the_keyframe_map_fails(facade_video, tmp_path, monkeypatch):
    path, _, _ = facade_video
    calls = _recording_mapping(monkeypatch, keyframe_map_fails=True)
    manifest = process_video(path, tmp_path / "scene", frames=20)
    assert [len(names) for names in calls] == [10, 0]  # the keyframes, then every image (no names: all)
    assert manifest["images"]["registered"] == 20


@pytest.mark.parametrize("step", [0, 3])
def test_a_keyframe_step_that_is_not_a_power_of_two_is_one_line_before_anything_runs(facade_video, tmp_path,
                                                                                        step):
    path, _, _ = facade_video
    message = (rf"^--keyframe-step {step}: must be a power of two \(1, 2, 4, \.\.\.\), since sequential matching "
               r"pairs frames 1, 2, 4, \.\.\. apart; 1 maps every image$")
    with pytest.raises(SpatialError, match=message):
        process_video(path, tmp_path / "scene", frames=20, config=SfMConfig(keyframe_step=step))
    assert not (tmp_path / "scene").exists()
