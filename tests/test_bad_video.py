"""Files that are not usable videos fail at once with a VideoError naming the file and the reason.

A one-frame video or a still image named ``.mp4`` used to reach the shot detector and fail there
with ``ValueError: cannot reshape array of size 0`` (a traceback on the CLI, retried by the assets as
if transient). Now the probe refuses them before any decoding, and the decode pass does too when it
is run without a probe.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from videos import write_audio_only, write_image, write_video

from marquee.ops.errors import VideoError
from marquee.ops.shots.fast import FastDetector
from marquee.ops.shots.registry import DEFAULT_DETECTOR, make_detector
from marquee.ops.shots.scan import detect_file, scan_video
from marquee.ops.shots.signals import SignalTrack
from marquee.ops.video import MIN_FRAMES, decode_frames, probe_video

#: name -> (file name, writer, words the reason must contain)
BAD: dict[str, tuple[str, Callable[[Path], object], str]] = {
    "one-frame": ("one.mp4", lambda p: write_video(p, [1]), "only 1 frame: a title needs at least 3 frames"),
    "two-frame": ("two.mp4", lambda p: write_video(p, [2]), "only 2 frames"),
    "jpeg-as-mp4": ("photo.mp4", lambda p: write_image(p, "jpeg"), "a still image (jpeg_pipe/mjpeg)"),
    "png-as-mp4": ("photo.mp4", lambda p: write_image(p, "png"), "a still image (png_pipe/png)"),
    "gif": ("loop.gif", lambda p: write_image(p, "gif", frames=5), "an animated image (gif/gif, 5 frames)"),
    "still-gif": ("still.gif", lambda p: write_image(p, "gif"), "a still image (gif/gif)"),
    "text-as-mp4": ("notes.mp4", lambda p: p.write_text("not a video\n" * 20), "not a readable media file"),
    "audio-only": ("song.mp4", write_audio_only, "no video stream (streams found: audio)"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    out = {}
    for name, (file_name, write, _) in BAD.items():
        (root / name).mkdir()
        path = root / name / file_name
        write(path)
        out[name] = path
    return out


def _check(exc: pytest.ExceptionInfo[VideoError], path: Path, name: str) -> None:
    assert exc.value.path == str(path)
    assert str(exc.value).startswith(f"{path}: ")
    assert BAD[name][2] in exc.value.reason


@pytest.mark.parametrize("name", BAD)
def test_probe_names_file_and_reason(bad_files: dict[str, Path], name: str) -> None:
    with pytest.raises(VideoError) as exc:
        probe_video(bad_files[name])
    _check(exc, bad_files[name], name)


@pytest.mark.parametrize("name", BAD)
@pytest.mark.parametrize("probe", [True, False])
def test_detect_file_names_file_and_reason(bad_files: dict[str, Path], name: str, probe: bool) -> None:
    """The path of ``marquee shots``: with the probe (default) or straight into the decode pass."""
    with pytest.raises(VideoError) as exc:
        detect_file(bad_files[name], make_detector(DEFAULT_DETECTOR), probe=probe)
    _check(exc, bad_files[name], name)


@pytest.mark.parametrize("name", ["jpeg-as-mp4", "gif"])
def test_decode_refuses_images_before_decoding(bad_files: dict[str, Path], name: str) -> None:
    frames = decode_frames(bad_files[name])
    with pytest.raises(VideoError) as exc:
        next(frames)  # refused on opening: not a single frame comes out
    _check(exc, bad_files[name], name)


def test_scan_refuses_a_one_frame_video_before_the_detector_finishes(bad_files: dict[str, Path]) -> None:
    class Finish(FastDetector):
        finished = False

        def finish(self):  # type: ignore[no-untyped-def]
            Finish.finished = True
            return super().finish()

    with pytest.raises(VideoError) as exc:
        scan_video(bad_files["one-frame"], detector=Finish())
    _check(exc, bad_files["one-frame"], "one-frame")
    assert not Finish.finished


def test_shortest_allowed_video_works(tmp_path: Path) -> None:
    path = tmp_path / "three.mp4"
    write_video(path, [MIN_FRAMES])
    assert probe_video(path).frame_count == MIN_FRAMES
    result = detect_file(path, make_detector("fast"))
    assert [(s.start_frame, s.end_frame) for s in result.shots] == [(0, MIN_FRAMES - 1)]


@pytest.mark.parametrize("n", [1, 2])
def test_signals_of_one_or_two_frames(n: int) -> None:
    """The cause of the old reshape error: the differences of a single frame (an empty stack)."""
    track = SignalTrack()
    frames = np.random.default_rng(0).integers(0, 256, (n, 27, 48, 3), dtype=np.uint8)
    for f in frames:
        track.push(f)
    track.flush()
    assert len(track) == n and track.diff[0] == 0.0
    detector = FastDetector()
    for i, f in enumerate(frames):
        detector.process(i, f)
    assert all(t.start_frame < n for t in detector.finish())


@pytest.mark.parametrize("name", ["one-frame", "jpeg-as-mp4", "gif"])
def test_cli_prints_one_error_line(bad_files: dict[str, Path], name: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "marquee.orchestration.cli", "shots", str(bad_files[name])],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "MARQUEE_HOME": str(tmp_path / "home")},
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"marquee shots: error: {bad_files[name]}: ")
    assert BAD[name][2] in lines[0]
