"""`spatial process video`: a synthetic orbit video with blurred frames, rotation metadata, bad files."""

import numpy as np
import pytest
from PIL import Image

from spatial import SpatialError, load_scene
from spatial.process.alignment import pose_errors
from spatial.process.pipeline import process_video
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


def test_video_to_scene_drops_blurred_frames(facade_video, tmp_path):
    path, truth, _ = facade_video
    manifest = process_video(path, tmp_path / "scene", frames=20)
    source = manifest["source"]
    assert source["frames_read"] == FRAMES
    assert set(source["blurred_frames"]) == BLURRED  # every blurred frame, and only those
    assert not set(source["kept_frames"]) & BLURRED and source["frames_kept"] == 20
    assert manifest["images"]["registered"] == 20
    assert manifest["config"]["fast_mapping"] is True  # settled for a video: fewer bundle adjustments
    assert manifest["config"]["max_image_size"] == 1024  # and features found on smaller frames
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
