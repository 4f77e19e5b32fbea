"""Decode passes of trailer matching that also keep every frame's presentation time.

The matcher works in frame indices; the tables speak seconds too, and variable-frame-rate files
make ``frame / fps`` wrong, so each pass records the times the decoder reports.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from marquee.ops.progress import ProgressFn
from marquee.ops.trailers.fingerprint import FilmFingerprinter, FilmFingerprints
from marquee.ops.trailers.match import TRAILER_FRAME_SIZE
from marquee.ops.video import decode_frames


def fingerprint_film_timed(
    path: str | Path,
    display_aspect: float,
    *,
    expected_frames: int | None = None,
    progress: ProgressFn | None = None,
) -> tuple[FilmFingerprints, np.ndarray]:
    """One decode of the film: its fingerprints and every frame's time in seconds."""
    fp = FilmFingerprinter(display_aspect)
    w, h = FilmFingerprinter.frame_size
    times: list[float] = []
    if progress is not None:
        progress(0, expected_frames or 0)
    for decoded in decode_frames(path, expected_frames=expected_frames):
        fp.process(decoded.index, decoded.small_rgb(w, h))
        times.append(decoded.time_s)
        if progress is not None:
            progress(len(times), expected_frames or 0)
    return fp.finish(), np.asarray(times, np.float64)


def trailer_luma_timed(
    path: str | Path, *, expected_frames: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One decode of the trailer: every frame's luma at the matcher's size, and its time."""
    w, h = TRAILER_FRAME_SIZE
    frames, times = [], []
    for decoded in decode_frames(path, expected_frames=expected_frames):
        frames.append(cv2.cvtColor(decoded.small_rgb(w, h), cv2.COLOR_RGB2GRAY))
        times.append(decoded.time_s)
    luma = np.stack(frames) if frames else np.zeros((0, h, w), np.uint8)
    return luma, np.asarray(times, np.float64)
