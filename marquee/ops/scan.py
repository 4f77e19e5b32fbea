"""The single decode pass over a title: shot detection and keyframe candidates together.

Decoding dominates the cost of the early stages, so every consumer of raw frames shares one pass:
the shot detector gets a tiny RGB frame made by swscale straight from YUV, the keyframe spool gets
the luma plane (for sharpness/brightness) and, once per window, the full picture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from marquee.ops.keyframes import Candidate, KeyframeSpool
from marquee.ops.shots.base import Shot, ShotDetector, Transition, shots_from_transitions
from marquee.ops.video import decode_frames

#: progress(frames_done, frames_total) is called about once a second.
ProgressFn = Callable[[int, int], None]


@dataclass
class ScanResult:
    frame_count: int
    frame_times: np.ndarray  # seconds, per frame, presentation order
    transitions: list[Transition]
    shots: list[Shot]
    candidates: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0
    detector_seconds: float = 0.0

    @property
    def frames_per_s(self) -> float:
        return self.frame_count / self.seconds if self.seconds > 0 else 0.0

    def shot_times(self, shot: Shot) -> tuple[float, float]:
        """Start and end of a shot in seconds (end = the time the frame after it begins)."""
        start = float(self.frame_times[shot.start_frame])
        if shot.end_frame + 1 < self.frame_count:
            end = float(self.frame_times[shot.end_frame + 1])
        else:
            step = float(np.median(np.diff(self.frame_times[-50:]))) if self.frame_count > 1 else 0.04
            end = float(self.frame_times[-1]) + step
        return start, end


def scan_video(
    path: str | Path,
    *,
    detector: ShotDetector | None,
    spool: KeyframeSpool | None = None,
    expected_frames: int | None = None,
    progress: ProgressFn | None = None,
    fixed_transitions: list[Transition] | None = None,
) -> ScanResult:
    """Decode ``path`` once, feeding the detector and the keyframe spool.

    With ``detector=None`` the shots come from ``fixed_transitions`` (a stored shots table), which is
    how keyframes are re-made without re-detecting shots.
    """
    if detector is None and fixed_transitions is None:
        raise ValueError("scan_video needs a detector or fixed transitions")
    small_size = detector.frame_size if detector is not None else (48, 27)
    times: list[float] = []
    det_s = 0.0
    started = last_report = time.perf_counter()
    total = expected_frames or 0
    for decoded in decode_frames(path, expected_frames=expected_frames):
        small = decoded.small_rgb(*small_size)
        if detector is not None:
            t0 = time.perf_counter()
            detector.process(decoded.index, small)
            det_s += time.perf_counter() - t0
        if spool is not None:
            spool.offer(decoded.index, decoded.time_s, small, decoded.luma(), decoded.frame)
        times.append(decoded.time_s)
        if progress is not None and time.perf_counter() - last_report > 1.0:
            last_report = time.perf_counter()
            progress(decoded.index + 1, total)
    n = len(times)
    if detector is not None:
        t0 = time.perf_counter()
        transitions = detector.finish()
        det_s += time.perf_counter() - t0
    else:
        transitions = list(fixed_transitions or [])
    candidates = spool.close() if spool is not None else []
    if progress is not None:
        progress(n, n)
    return ScanResult(
        frame_count=n,
        frame_times=np.asarray(times, dtype=np.float64),
        transitions=transitions,
        shots=shots_from_transitions(transitions, n),
        candidates=candidates,
        seconds=time.perf_counter() - started,
        detector_seconds=det_s,
    )
