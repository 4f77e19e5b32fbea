"""Videos with a display rotation (phones) are analysed upright: probe, decode, scan, faces, clips.

A phone held upright codes its picture sideways and records, in the container's display matrix, how to
turn it for display. Here the same upright pictures are written once as they are and once coded turned
(90, 180, 270 degrees) with the matching display matrix; everything downstream of the probe must then
see the same pictures in both, up to codec noise. Faces come from the repository's own crops
(``tests/data``), so no external media is needed.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from videos import coded_sideways, face_collage, write_frames

from marquee.ops.clips import ClipSpan, write_clip
from marquee.ops.keyframes import KeyframePolicy, KeyframeSpool
from marquee.ops.shots.registry import make_detector
from marquee.ops.shots.scan import scan_video
from marquee.ops.video import decode_frames, probe_video, read_rotation, rotate

pytestmark = pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
    reason="this PyAV cannot write a display matrix (VideoStream.set_display_rotation)",
)

ROTATIONS = (90, 180, 270)
#: Mean absolute difference (0-255) allowed between two encodings of the same pictures.
NOISE = 3.0


def _pictures() -> list[np.ndarray]:
    """Two upright portrait scenes (faces drifting right, then the same faces in a darker grade) with
    a hard cut between them, 40 frames at 25 fps."""
    first = [face_collage(shift=i // 3) for i in range(20)]
    second = [(face_collage(shift=8 - i // 3).astype(np.float32) * 0.6).astype(np.uint8) for i in range(20)]
    return first + second


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """rotation -> clip: 0 is upright as coded; the others are coded turned, with a display matrix."""
    root = tmp_path_factory.mktemp("rotation")
    pictures = _pictures()
    out = {}
    for rotation in (0, *ROTATIONS):
        path = root / f"rot{rotation}.mp4"
        write_frames(path, [coded_sideways(p, rotation) for p in pictures], display_rotation=rotation)
        out[rotation] = path
    return out


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("rotation", ROTATIONS)
def test_probe_reads_display_matrix(clips: dict[int, Path], rotation: int) -> None:
    upright, info = probe_video(clips[0]), probe_video(clips[rotation])
    assert info.rotation == rotation
    assert (info.width, info.height) == (upright.width, upright.height) == (280, 416)
    coded = (info.height, info.width) if rotation in (90, 270) else (info.width, info.height)
    assert (info.coded_width, info.coded_height) == coded
    assert read_rotation(clips[rotation]) == rotation
    assert upright.rotation == 0


def test_rotation_sign_agrees_with_opencv(clips: dict[int, Path]) -> None:
    """OpenCV's FFmpeg reader turns frames by the display matrix itself (an independent reading):
    our upright frame must be its frame."""
    cap = cv2.VideoCapture(str(clips[90]))
    ok, bgr = cap.read()
    cap.release()
    if not ok or bgr.shape[:2] != (416, 280):
        pytest.skip("this OpenCV build does not apply display matrices")
    ours = next(decode_frames(clips[90])).rgb()
    assert _mad(ours, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)) < NOISE


def test_legacy_rotate_tag(tmp_path: Path) -> None:
    """No display matrix, only a ``rotate`` tag (Matroska keeps it, upper-cased): still turned."""
    picture = face_collage()
    path = tmp_path / "tagged.mkv"
    with av.open(str(path), mode="w", format="matroska") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 416, 280, "yuv420p"
        s.metadata["rotate"] = "90"
        for _ in range(3):
            for p in s.encode(av.VideoFrame.from_ndarray(coded_sideways(picture, 90), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    info = probe_video(path)
    assert (info.rotation, info.width, info.height) == (90, 280, 416)
    assert _mad(next(decode_frames(path)).rgb(), picture) < 2 * NOISE


@pytest.mark.parametrize("rotation", ROTATIONS)
def test_decoded_frames_are_upright(clips: dict[int, Path], rotation: int) -> None:
    """Every picture ``DecodedFrame`` gives out, at every size, is the upright one: the upright clip's
    frame at full size and swscale sizes; for the shot detector's tiny thumbnails (whose sampling
    aliases differently on a turned grid) the area-averaged source picture. A sideways picture
    would be off by 60 levels or more, or have the wrong shape."""
    pictures = _pictures()
    n = 0
    for up, turned in zip(decode_frames(clips[0]), decode_frames(clips[rotation]), strict=True):
        truth = pictures[up.index]
        assert (turned.rotation, turned.width, turned.height) == (rotation, 280, 416)
        assert _mad(turned.rgb(), up.rgb()) < NOISE
        assert _mad(turned.rgb(140, 208), up.rgb(140, 208)) < NOISE
        assert turned.luma().shape == up.luma().shape == (416, 280)
        assert turned.luma(140).shape == (208, 140)
        # Strided: the two sample pixels a pixel apart, so compare them blurred (sideways: 50 levels off).
        assert _mad(cv2.blur(turned.luma(140), (5, 5)), cv2.blur(up.luma(140), (5, 5))) < 3 * NOISE
        assert _mad(turned.luma(), up.luma()) < NOISE
        for width, height in ((48, 27), (27, 48)):
            area = cv2.resize(truth, (width, height), interpolation=cv2.INTER_AREA)
            assert _mad(turned.thumbnail(width, height), area) < 2 * NOISE
            assert _mad(turned.small_rgb(width, height), area) < 3 * NOISE
        n += 1
    assert n == 40


def test_unrotated_frames_take_no_copy() -> None:
    a = np.zeros((4, 6, 3), np.uint8)
    assert rotate(a, 0) is a
    assert rotate(a, 90).shape == (6, 4, 3)


@pytest.mark.parametrize("rotation", [90, 270])
def test_scan_keyframes_are_upright(clips: dict[int, Path], rotation: int, tmp_path: Path) -> None:
    """The single decode pass: the same shots and motion, and keyframe candidates spooled in display
    orientation (each the upright picture of its frame)."""
    pictures = _pictures()
    results = {}
    for r in (0, rotation):
        spool = KeyframeSpool(KeyframePolicy(), tmp_path / f"spool{r}")
        results[r] = scan_video(clips[r], detector=make_detector("fast"), spool=spool)
    up, turned = results[0], results[rotation]
    assert [(s.start_frame, s.end_frame) for s in turned.shots] == [(0, 19), (20, 39)]
    assert [(s.start_frame, s.end_frame) for s in up.shots] == [(0, 19), (20, 39)]
    assert np.allclose(turned.frame_motion, up.frame_motion, atol=0.01)
    assert len(turned.candidates) == len(up.candidates) == 2  # one per shot (a window restarts at the cut)
    for c in turned.candidates:
        assert (c.width, c.height) == (280, 416)
        stored = cv2.cvtColor(cv2.imread(str(c.path)), cv2.COLOR_BGR2RGB)
        assert _mad(stored, pictures[c.frame]) < 2 * NOISE


def test_face_count_matches_upright(clips: dict[int, Path]) -> None:
    """Faces are found on the keyframes of the rotated clip as on the upright one, with boxes inside
    the display picture (sideways, MTCNN finds at most one of the six)."""
    from marquee.ops.faces.detect import make_face_detector
    from marquee.ops.faces.pipeline import video_keyframes

    detector = make_face_detector()
    counts = {}
    for rotation in (0, 90):
        with video_keyframes(clips[rotation], shot_detector="fast") as video:
            assert (video.width, video.height) == (280, 416)
            images = [k.image for k in video.images()]
        found = detector.detect_batch(images)
        for image, dets in zip(images, found, strict=True):
            assert image.shape == (416, 280, 3)
            assert (dets.boxes[:, 2] <= 280).all() and (dets.boxes[:, 3] <= 416).all()
        counts[rotation] = [len(d) for d in found]
    assert counts[90] == counts[0]
    assert all(n == 6 for n in counts[0])
    sideways = detector.detect_batch([coded_sideways(images[0], 90)])[0]
    assert len(sideways) < 6  # the defect this guards against


def test_preview_clip_is_upright(clips: dict[int, Path], tmp_path: Path) -> None:
    """Preview clips are re-encoded upright, without a display matrix, at the display aspect, and as
    close to the source pictures as the upright clip's preview (both pass through a CRF 26 encode)."""
    pictures = _pictures()
    span = ClipSpan(0.2, 1.2)  # frames 5..29
    up = write_clip(clips[0], span, tmp_path / "up.mp4", max_width=140, audio=False)
    turned = write_clip(clips[90], span, tmp_path / "turned.mp4", max_width=140, audio=False)
    info = probe_video(turned)
    assert (info.rotation, info.width, info.height) == (0, 140, 208)
    assert read_rotation(turned) == 0
    pairs = list(zip(decode_frames(up), decode_frames(turned), strict=True))
    assert len(pairs) == 25
    for a, b in pairs:
        truth = cv2.resize(pictures[5 + a.index], (140, 208), interpolation=cv2.INTER_AREA)
        assert _mad(b.rgb(), truth) < max(3 * NOISE, _mad(a.rgb(), truth) + 1.0)
