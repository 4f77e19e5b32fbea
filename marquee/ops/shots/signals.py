"""Cheap per-frame signals for shot detection, computed online from tiny RGB frames.

Every signal is a handful of numpy operations on a 48x27 frame, so computing them costs far less than
decoding the picture. The signals are kept for the whole title (a few floats per frame: a two-hour
film needs about 10 MB), while frames live only in a short ring buffer.

- ``diff``: mean absolute RGB difference to the previous frame, in [0, 1]. A cut is a spike of it.
- ``hist``: 1 - intersection of 64-bin RGB histograms with the previous frame: robust to motion.
- ``far``: mean absolute difference to the frame ``lag`` frames back: large across a gradual change.
- ``blend``: how far frame ``t - lag//2`` is from the average of frames ``t - lag`` and ``t``,
  relative to ``far``: small inside a dissolve, where every frame is a mix of its neighbours.
- ``hist_far``: the histogram distance between frames ``t - lag`` and ``t``: a dissolve between two
  takes changes the colours, a camera move mostly slides the same colours across the frame.
- ``luma`` / ``luma_std``: mean and spread of brightness, in [0, 1], of the frame's central area (so
  letterbox bars do not count): a fade goes to a dark (or white), flat frame.
"""

from __future__ import annotations

from collections import deque

import numpy as np

#: Frames between the two ends compared by ``far`` and ``blend``.
GRADUAL_LAG = 10
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def colour_histogram(frame: np.ndarray) -> np.ndarray:
    """64-bin joint RGB histogram (4 levels per channel), normalised to sum 1."""
    q = (frame >> 6).astype(np.int32)
    idx = (q[..., 0] << 4) | (q[..., 1] << 2) | q[..., 2]
    return np.bincount(idx.ravel(), minlength=64).astype(np.float32) / idx.size


class SignalTrack:
    """Per-frame signals of a stream of tiny frames, plus a ring buffer of the most recent frames."""

    def __init__(self, keep_frames: int = 96, lag: int = GRADUAL_LAG) -> None:
        self.lag = lag
        self.keep_frames = max(keep_frames, lag + 2)
        self.frames: deque[np.ndarray] = deque(maxlen=self.keep_frames)
        self.first_index = 0  # index of self.frames[0]
        self._hists: deque[np.ndarray] = deque(maxlen=lag + 1)
        self.diff: list[float] = []
        self.hist: list[float] = []
        self.far: list[float] = []
        self.blend: list[float] = []
        self.hist_far: list[float] = []
        self.luma: list[float] = []
        self.luma_std: list[float] = []

    def __len__(self) -> int:
        return len(self.diff)

    def push(self, frame: np.ndarray) -> None:
        """Add the next frame (HxWx3 uint8) and compute its signals."""
        cur = frame.astype(np.int16)
        n = len(self.diff)
        if len(self.frames) == self.keep_frames:
            self.first_index += 1
        prev = self.frames[-1].astype(np.int16) if self.frames else None
        hist = colour_histogram(frame)
        if prev is None:
            self.diff.append(0.0)
            self.hist.append(0.0)
        else:
            self.diff.append(float(np.abs(cur - prev).mean()) / 255.0)
            self.hist.append(float(1.0 - np.minimum(hist, self._hists[-1]).sum()))
        self._hists.append(hist)
        if n >= self.lag:
            old = self.frame(n - self.lag).astype(np.int16)
            mid = self.frame(n - self.lag // 2).astype(np.int16)
            far = float(np.abs(cur - old).mean()) / 255.0
            mix = float(np.abs(2 * mid - cur - old).mean()) / (2 * 255.0)
            self.far.append(far)
            self.blend.append(mix / (far + 0.02))
            self.hist_far.append(float(1.0 - np.minimum(hist, self._hists[0]).sum()))
        else:
            self.far.append(0.0)
            self.blend.append(1.0)
            self.hist_far.append(0.0)
        h, w = frame.shape[:2]  # brightness of the picture inside any letterbox or pillarbox bars
        grey = frame[h * 3 // 20 : h - h * 3 // 20, w // 10 : w - w // 10].astype(np.float32) @ _LUMA_WEIGHTS
        self.luma.append(float(grey.mean()) / 255.0)
        self.luma_std.append(float(grey.std()) / 255.0)
        self.frames.append(frame)

    def frame(self, index: int) -> np.ndarray:
        """A frame still in the ring buffer."""
        pos = index - self.first_index
        if not 0 <= pos < len(self.frames):
            raise IndexError(f"frame {index} is no longer buffered (have {self.first_index}..)")
        return self.frames[pos]

    def window(self, start: int, length: int) -> np.ndarray:
        """``length`` buffered frames from ``start``, repeating the edge frames where out of range."""
        lo, hi = self.first_index, self.first_index + len(self.frames) - 1
        return np.stack([self.frame(min(max(i, lo), hi)) for i in range(start, start + length)])

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: np.asarray(getattr(self, name), np.float32)
            for name in ("diff", "hist", "far", "blend", "hist_far", "luma", "luma_std")
        }
