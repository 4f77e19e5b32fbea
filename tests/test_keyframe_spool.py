"""The keyframe spool of the decode pass: its measures, its candidates and its failures."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from marquee.ops.keyframes import KeyframePolicy, KeyframeSpool, sharpness_and_brightness
from marquee.ops.shots.registry import make_detector
from marquee.ops.shots.scan import scan_video
from marquee.ops.video import decode_frames
from marquee.synth.media import bundled_media_dir

CLIP = bundled_media_dir() / "clips" / "sintel_trailer_excerpt.mp4"


def _reference(luma: np.ndarray) -> tuple[float, float]:
    """The measures written the plain way: a float Laplacian of the strided plane."""
    lap = cv2.Laplacian(luma, cv2.CV_32F, ksize=3)
    lap_std, y_std = cv2.meanStdDev(lap)[1][0, 0], cv2.meanStdDev(luma)[1][0, 0]
    return float(lap_std**2 / (y_std**2 + 100.0)), float(cv2.mean(luma)[0] / 255.0)


def test_one_pass_measures_equal_the_plain_ones_on_real_frames():
    for decoded in decode_frames(CLIP):
        if decoded.index % 40:
            continue
        luma = decoded.luma(max_width=200)  # a strided view, as in the decode pass
        sharp, bright = sharpness_and_brightness(luma)
        ref_sharp, ref_bright = _reference(luma)
        assert sharp == pytest.approx(ref_sharp, rel=1e-6, abs=1e-9)
        assert bright == pytest.approx(ref_bright, abs=1e-9)


def test_candidates_come_back_in_frame_order_with_their_pictures(tmp_path: Path):
    spool = KeyframeSpool(KeyframePolicy(), tmp_path / "spool")
    scan = scan_video(CLIP, detector=make_detector("fast"), spool=spool)
    frames = [c.frame for c in scan.candidates]
    assert frames == sorted(frames) and len(frames) >= scan.frame_count / 24 * 0.9
    for c in scan.candidates[:: max(1, len(frames) // 5)]:
        image = cv2.imread(str(c.path))
        assert image is not None and image.shape[:2] == (c.height, c.width)
    spool.cleanup()


def test_a_candidate_that_cannot_be_written_fails_naming_it(tmp_path: Path):
    spool = KeyframeSpool(KeyframePolicy(window_s=0.2), tmp_path / "spool")
    (tmp_path / "spool").rmdir()  # nothing can be written there now
    with pytest.raises(OSError, match=r"keyframe candidate .*spool"):
        scan_video(CLIP, detector=None, spool=spool, fixed_transitions=[])
    spool.cleanup()
