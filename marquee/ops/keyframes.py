"""Keyframe candidates collected during the single decode pass, and the choice of keyframes per shot.

Shot boundaries are only final once the whole title has been decoded (the detector may defer unsure
positions to a learnt model), yet the face stages need pictures so they never decode the film again.
So while decoding we keep, in a spool on local disk, the sharpest frame of every short window
(windows restart wherever consecutive frames differ a lot, so a short shot always has its own
candidate). Memory holds one pending frame per window; disk holds about one JPEG per window. After
detection, ``select_keyframes`` picks a few sharp representative frames per shot plus regular samples
inside long shots, never from inside a gradual transition.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from marquee.ops.timeline import Shot, Transition
from marquee.ops.video import DecodedFrame


def sharpness_and_brightness(luma: np.ndarray) -> tuple[float, float]:
    """Sharpness and brightness of one luma plane, in one pass over it, for every decoded frame.

    Sharpness is the variance of the Laplacian normalised by the luma's contrast: the plain variance
    rewards noise and high-contrast scenes; dividing by the luma variance (plus a floor so flat dark
    frames score low) makes it closer to 'in focus, no motion blur'. Brightness is the mean luma in
    [0, 1].

    The plane usually arrives as a strided view of the decoder's picture: it is copied once (OpenCV
    would copy it for each call), and the Laplacian of 8-bit luma (at most 1,020 in magnitude) is
    taken in 16-bit integers, exactly, rather than in floats.
    """
    y = np.ascontiguousarray(luma, dtype=np.uint8)
    lap = cv2.Laplacian(y, cv2.CV_16S, ksize=3)
    _, lap_std = cv2.meanStdDev(lap)
    y_mean, y_std = cv2.meanStdDev(y)
    sharp = float(lap_std[0, 0] ** 2 / (y_std[0, 0] ** 2 + 100.0))
    return sharp, float(y_mean[0, 0] / 255.0)


@dataclass(frozen=True)
class Candidate:
    """A spooled candidate frame."""

    frame: int
    time_s: float
    sharpness: float
    brightness: float
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class KeyframePolicy:
    """How many keyframes to keep and where."""

    window_s: float = 1.0  # one candidate per window of this length
    per_shot: int = 3  # sharpest representative frames per shot
    sample_every_s: float = 4.0  # plus the best frame of each such interval inside long shots
    min_gap_s: float = 0.5  # representative frames at least this far apart
    dark_below: float = 0.06  # frames darker than this are only used when nothing else exists
    max_side: int = 1920  # longer side of stored keyframes, pixels
    jpeg_quality: int = 92
    boundary_diff: float = 18.0  # mean abs difference (0-255) of small frames that restarts a window

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


class KeyframeSpool:
    """Collects the sharpest frame per window during decode; bounded memory, spooled to disk.

    Candidates are stored upright: a ``DecodedFrame`` turns itself by its stream's display rotation.
    """

    def __init__(self, policy: KeyframePolicy, spool_dir: Path | None = None) -> None:
        self.policy = policy
        self._own_dir = spool_dir is None
        self.dir = Path(spool_dir or tempfile.mkdtemp(prefix="marquee-keyframes-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.candidates: list[Candidate] = []
        self._window_start: float | None = None
        # (score, index, time_s, sharpness, brightness, frame) of the best frame in the open window
        self._best: tuple[float, int, float, float, float, DecodedFrame] | None = None
        self._prev_small: np.ndarray | None = None

    def offer(
        self, index: int, time_s: float, small: np.ndarray, luma: np.ndarray, frame: DecodedFrame
    ) -> None:
        """Consider one decoded frame, converted to RGB only if it is still the best of its window when
        the window closes."""
        restart = False
        if self._prev_small is not None:
            diff = float(cv2.norm(small, self._prev_small, cv2.NORM_L1)) / small.size
            restart = diff > self.policy.boundary_diff
        self._prev_small = small
        if self._window_start is None or restart or time_s - self._window_start >= self.policy.window_s:
            self._flush()
            self._window_start = time_s
        s, b = sharpness_and_brightness(luma)
        score = s if b >= self.policy.dark_below else s * 1e-3
        if self._best is None or score > self._best[0]:
            self._best = (score, index, time_s, s, b, frame)

    def _flush(self) -> None:
        if self._best is None:
            return
        _, index, time_s, sharp, b, frame = self._best
        rgb = _limit_size(frame.rgb(), self.policy.max_side)
        path = self.dir / f"{index:08d}.jpg"
        ok = cv2.imwrite(
            str(path),
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, self.policy.jpeg_quality],
        )
        if not ok:
            raise OSError(f"cannot write keyframe candidate {path}")
        self.candidates.append(Candidate(index, time_s, sharp, b, path, rgb.shape[1], rgb.shape[0]))
        self._best = None

    def close(self) -> list[Candidate]:
        """Flush the last window and return every candidate in frame order."""
        self._flush()
        return self.candidates

    def cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _limit_size(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Keyframe:
    """A chosen keyframe: a candidate, its shot and why it was chosen."""

    candidate: Candidate
    shot_id: int
    kind: str  # "representative" | "sample"
    rank_in_shot: int


def select_keyframes(
    candidates: Iterable[Candidate],
    shots: list[Shot],
    transitions: list[Transition],
    fps: float,
    policy: KeyframePolicy,
) -> list[Keyframe]:
    """Choose keyframes per shot: the ``per_shot`` sharpest (spread at least ``min_gap_s`` apart) plus,
    for long shots, the sharpest frame of every ``sample_every_s`` interval not already covered.

    Frames inside gradual transitions are skipped unless a shot has nothing else; dark frames rank
    last. Every shot with at least one candidate gets at least one keyframe.
    """
    in_transition = np.zeros(0, dtype=bool)
    cands = sorted(candidates, key=lambda c: c.frame)
    if cands:
        in_transition = np.zeros(cands[-1].frame + 1, dtype=bool)
        for t in transitions:
            if t.kind != "cut":
                in_transition[t.start_frame : t.end_frame + 1] = True
    frames = np.asarray([c.frame for c in cands], dtype=np.int64)
    chosen: list[Keyframe] = []
    for shot in shots:
        lo, hi = np.searchsorted(frames, shot.start_frame), np.searchsorted(frames, shot.end_frame, "right")
        pool = cands[lo:hi]
        clean = [c for c in pool if not in_transition[c.frame]] or pool
        if not clean:
            continue
        ranked = sorted(clean, key=lambda c: (c.brightness >= policy.dark_below, c.sharpness), reverse=True)
        picked: list[Candidate] = []
        for c in ranked:
            if len(picked) >= policy.per_shot:
                break
            if all(abs(c.time_s - p.time_s) >= policy.min_gap_s for p in picked):
                picked.append(c)
        rank = {c.frame: i for i, c in enumerate(picked)}
        samples: list[Candidate] = []
        if policy.sample_every_s > 0 and pool:
            t0 = clean[0].time_s
            bins: dict[int, list[Candidate]] = {}
            for c in clean:
                bins.setdefault(int((c.time_s - t0) // policy.sample_every_s), []).append(c)
            for members in bins.values():
                if any(c.frame in rank for c in members):
                    continue
                samples.append(max(members, key=lambda c: (c.brightness >= policy.dark_below, c.sharpness)))
        for c in sorted(picked + samples, key=lambda c: c.frame):
            kind = "representative" if c.frame in rank else "sample"
            chosen.append(Keyframe(c, shot.shot_id, kind, rank.get(c.frame, -1)))
    return chosen
