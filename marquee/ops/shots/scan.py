"""The single decode pass over a title: shot detection and keyframe candidates together.

Decoding dominates the cost of the early stages, so every consumer of raw frames shares one pass:
the shot detector gets a tiny RGB frame (``DecodedFrame.thumbnail``), the keyframe spool gets the luma
plane (for sharpness/brightness) and, once per window, the full picture, and a per-frame motion value
is taken from the tiny frames, so that later stages (trailer-worthiness) need not decode again. All of
them see the picture upright (``DecodedFrame`` applies the stream's display rotation).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from marquee.ops.keyframes import Candidate, KeyframeSpool
from marquee.ops.prefetch import read_ahead
from marquee.ops.progress import ProgressFn
from marquee.ops.shots.base import ShotDetector
from marquee.ops.timeline import Shot, Timeline, Transition, shot_rows, shots_from_transitions
from marquee.ops.video import decode_frames, probe_video

#: Decoded frames the decoder thread may run ahead of the analysis (a 1080p frame is about 3 MB).
READ_AHEAD = 8


@dataclass
class ScanResult:
    frame_count: int
    frame_times: np.ndarray  # seconds, per frame, presentation order
    transitions: list[Transition]
    shots: list[Shot]
    candidates: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0
    detector_seconds: float = 0.0
    #: Per frame: mean absolute difference of its small grey picture to the previous frame's, in
    #: [0, 1] (0 for the first frame). Camera and subject motion, and any change of picture.
    frame_motion: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    #: Per shot (aligned with ``shots``): the median of ``frame_motion`` over the shot's own frames.
    shot_motion: list[float] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return self.frame_count / self.seconds if self.seconds > 0 else 0.0

    @property
    def timeline(self) -> Timeline:
        """Frame <-> time for the decoded video (shot spans in seconds: ``timeline.shot_span_s``)."""
        return Timeline(self.frame_times)

    def shot_rows(self, detector: str | None = None) -> list[dict[str, Any]]:
        """The ``shots`` table's rows (``marquee.ops.timeline.shot_rows``), with motion when measured."""
        motion = self.shot_motion if len(self.shot_motion) == len(self.shots) else None
        return shot_rows(self.shots, self.timeline, self.transitions, motion=motion, detector=detector)


class FrameSink(Protocol):
    """Anything else that wants every frame of the pass, small: ``process(index, rgb)`` in order."""

    frame_size: tuple[int, int]  # (width, height) of the thumbnails it wants

    def process(self, index: int, small_rgb: np.ndarray) -> None: ...


def scan_video(
    path: str | Path,
    *,
    detector: ShotDetector | None,
    spool: KeyframeSpool | None = None,
    expected_frames: int | None = None,
    progress: ProgressFn | None = None,
    fixed_transitions: list[Transition] | None = None,
    sinks: Sequence[FrameSink] = (),
) -> ScanResult:
    """Decode ``path`` once, feeding the detector, the keyframe spool and any other ``sinks`` (each
    gets every frame as an RGB thumbnail of its ``frame_size``: the film's trailer fingerprints ride
    here, so a title with a trailer is not decoded a second time for them).

    With ``detector=None`` the shots come from ``fixed_transitions`` (a stored shots table), which is
    how keyframes are re-made without re-detecting shots. An image file, or a video with fewer than
    ``video.MIN_FRAMES`` frames, raises VideoError (from ``decode_frames``) before the detector finishes.
    """
    if detector is None and fixed_transitions is None:
        raise ValueError("scan_video needs a detector or fixed transitions")
    small_size = detector.frame_size if detector is not None else (48, 27)
    times: list[float] = []
    motion = MotionMeter()
    det_s = 0.0
    started = last_report = time.perf_counter()
    total = expected_frames or 0
    if progress is not None:
        progress(0, total)  # the stage starts now (bars time it from here)
    for decoded in read_ahead(decode_frames(path, expected_frames=expected_frames), depth=READ_AHEAD):
        small = decoded.thumbnail(*small_size)
        motion.push(small)
        if detector is not None:
            t0 = time.perf_counter()
            detector.process(decoded.index, small)
            det_s += time.perf_counter() - t0
        if spool is not None:
            spool.offer(decoded.index, decoded.time_s, small, decoded.luma(), decoded)
        for sink in sinks:
            sink.process(decoded.index, decoded.small_rgb(*sink.frame_size))
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
    shots = shots_from_transitions(transitions, n)
    frame_motion = motion.values()
    return ScanResult(
        frame_count=n,
        frame_times=np.asarray(times, dtype=np.float64),
        transitions=transitions,
        shots=shots,
        candidates=candidates,
        seconds=time.perf_counter() - started,
        detector_seconds=det_s,
        frame_motion=frame_motion,
        shot_motion=shot_motion(frame_motion, shots, transitions),
    )


class MotionMeter:
    """Per-frame motion from the small frames the pass already makes: the mean absolute difference of
    consecutive grey thumbnails, in [0, 1].

    Frames are only copied in as they come (one small array assignment) and measured ``block`` at a
    time in a few numpy calls: per-frame OpenCV or numpy calls cost more in call overhead than in
    arithmetic at 48x27, and inside the decode pass (decoder threads busy on both cores) each one cost
    several times more than alone. Stored as float32: a two-hour film needs under 1 MB.
    """

    def __init__(self, block: int = 64) -> None:
        self.block = block
        self._frames: np.ndarray | None = None  # [0]: the last frame measured, [1..k]: waiting ones
        self._k = 0
        self._chunks: list[np.ndarray] = []
        self._started = False

    def push(self, small_rgb: np.ndarray) -> None:
        if self._frames is None:
            self._frames = np.empty((self.block + 1, *small_rgb.shape), np.uint8)
        self._frames[1 + self._k] = small_rgb
        self._k += 1
        if self._k == self.block:
            self._measure()

    def _measure(self) -> None:
        k, frames = self._k, self._frames
        if k == 0 or frames is None:
            return
        h, w = frames.shape[1:3]  # the block as one tall picture: one OpenCV call each, not one a frame
        tall = frames[: k + 1].reshape((k + 1) * h, w, 3)  # [0] is the frame before this block
        grey = cv2.cvtColor(tall, cv2.COLOR_RGB2GRAY).reshape(k + 1, h * w)
        step = cv2.absdiff(grey[1:], grey[:-1]).sum(axis=1, dtype=np.int64) / (h * w * 255.0)
        if not self._started:  # the first frame of the title has no predecessor
            step[0], self._started = 0.0, True
        self._chunks.append(step.astype(np.float32))
        frames[0] = frames[k]
        self._k = 0

    def values(self) -> np.ndarray:
        """Motion of every frame pushed so far."""
        self._measure()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)


def shot_motion(frame_motion: np.ndarray, shots: list[Shot], transitions: list[Transition]) -> list[float]:
    """Median frame motion of each shot, over its own frames only.

    Left out: the shot's first frame (its difference is the cut into it) and every frame inside a
    transition (a dissolve or fade changes the picture without anything moving), both the one that
    opens the shot and the one that closes it. A shot with nothing left (shorter than its
    transitions) falls back to all its frames but the first, or 0 for a one-frame shot.
    """
    n = len(frame_motion)
    inside = np.zeros(n + 1, bool)
    for t in transitions:
        if t.kind != "cut":  # a gradual transition: its frames, and the step out of it
            inside[max(0, t.start_frame) : min(n, t.end_frame + 2)] = True
    out = []
    for shot in shots:
        lo, hi = shot.start_frame + 1, shot.end_frame + 1  # differences within the shot
        values = frame_motion[lo:hi]
        own = values[~inside[lo:hi]]
        chosen = own if own.size else values
        out.append(round(float(np.median(chosen)), 6) if chosen.size else 0.0)
    return out


# ------------------------------------------------------------------------------------------------
# A plain file's shots (``marquee shots``, benchmarks): the same pass, with no keyframes and no state


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
    #: [0, 1], leaving out transitions (``marquee.ops.shots.scan.shot_motion``).
    shot_motion: list[float]

    @property
    def frame_count(self) -> int:
        return len(self.frame_times)

    @property
    def frames_per_s(self) -> float:
        return self.frame_count / self.seconds if self.seconds else 0.0

    def rows(self) -> list[dict[str, Any]]:
        """The shots as the ``shots`` table stores them (``marquee.ops.timeline.shot_rows``)."""
        return shot_rows(
            self.shots,
            Timeline(self.frame_times),
            self.transitions,
            motion=self.shot_motion,
            detector=self.detector,
        )


def detect_file(
    path: str | Path, detector: ShotDetector, *, probe: bool = True, progress: ProgressFn | None = None
) -> DetectResult:
    """Decode ``path`` once and detect its shots; bad files raise VideoError naming the file.

    The probe refuses image files and videos too short for shot detection before any decoding.
    ``probe=False`` skips it (benchmarks time the decode pass alone); the decode pass then refuses them.
    """
    expected = probe_video(path).frame_count if probe else None
    scan: ScanResult = scan_video(path, detector=detector, expected_frames=expected, progress=progress)
    duration = scan.timeline.shot_span_s(scan.shots[-1])[1] if scan.shots else 0.0
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
