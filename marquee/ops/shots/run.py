"""Shots of a plain video file, with no Dagster state: what ``marquee shots`` and benchmarks call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marquee.ops.scan import ProgressFn, ScanResult, scan_video
from marquee.ops.shots.base import Shot, ShotDetector, Transition
from marquee.ops.video import probe_video


@dataclass
class DetectResult:
    path: str
    detector: str
    frame_times: np.ndarray
    transitions: list[Transition]
    shots: list[Shot]
    duration_s: float
    seconds: float
    model_frames: int
    #: Per shot (aligned with ``shots``): median frame-to-frame change of its small grey picture, in
    #: [0, 1], leaving out transitions (``marquee.ops.scan.shot_motion``).
    shot_motion: list[float]

    @property
    def frame_count(self) -> int:
        return len(self.frame_times)

    @property
    def frames_per_s(self) -> float:
        return self.frame_count / self.seconds if self.seconds else 0.0


def detect_file(
    path: str | Path, detector: ShotDetector, *, probe: bool = True, progress: ProgressFn | None = None
) -> DetectResult:
    """Decode ``path`` once and detect its shots; bad files raise VideoError naming the file.

    The probe refuses image files and videos too short for shot detection before any decoding.
    ``probe=False`` skips it (benchmarks time the decode pass alone); the decode pass then refuses them.
    """
    expected = probe_video(path).frame_count if probe else None
    scan: ScanResult = scan_video(path, detector=detector, expected_frames=expected, progress=progress)
    duration = scan.shot_times(scan.shots[-1])[1] if scan.shots else 0.0
    return DetectResult(
        path=str(path),
        detector=detector.identity,
        frame_times=scan.frame_times,
        transitions=scan.transitions,
        shots=scan.shots,
        duration_s=duration,
        seconds=scan.seconds,
        model_frames=int(getattr(detector, "model_frames", 0) or 0),
        shot_motion=list(scan.shot_motion),
    )
