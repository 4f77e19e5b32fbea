"""Cheap per-frame signals for shot detection, computed from tiny RGB frames in blocks.

Every signal is a handful of numpy operations on 48x27 frames. Frames are first copied into a ring
buffer and their signals computed ``block`` frames at a time: one numpy call then covers a block
instead of one frame, which matters because at these sizes the Python and numpy call overhead, not
the arithmetic, is the cost (per frame it was about as much as decoding a 360p picture). The signals
are kept for the whole title (a few floats per frame: a two-hour film needs about 10 MB), while frames
live only in the ring buffer.

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

import numpy as np

#: Frames between the two ends compared by ``far`` and ``blend``.
GRADUAL_LAG = 10
#: Frames whose signals are computed together (signals lag the newest frame by at most this).
BLOCK = 16
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
SIGNALS = ("diff", "hist", "far", "blend", "hist_far", "luma", "luma_std")


def colour_histogram(frame: np.ndarray) -> np.ndarray:
    """64-bin joint RGB histogram (4 levels per channel), normalised to sum 1."""
    return colour_histograms(frame[None])[0]


def colour_histograms(frames: np.ndarray) -> np.ndarray:
    """64-bin joint RGB histograms of ``frames`` (N x H x W x 3 uint8), each normalised to sum 1."""
    q = frames >> 6
    idx = (q[..., 0].astype(np.int32) << 4) | (q[..., 1] << 2) | q[..., 2]
    n = len(frames)
    idx += (np.arange(n, dtype=np.int32) * 64)[:, None, None]
    counts = np.bincount(idx.ravel(), minlength=64 * n).reshape(n, 64)
    return counts.astype(np.float32) / (idx[0].size or 1)


def _mean_abs(a: np.ndarray) -> np.ndarray:
    """Mean absolute value of each frame of an int16 stack, exactly (integer sums); empty for none.

    The frame size comes from the stack's shape, not its first frame: the differences of a single
    frame with its (absent) predecessors are an empty stack, which must give no values, not fail."""
    per_frame = int(np.prod(a.shape[1:]))
    return np.abs(a).reshape(len(a), per_frame).sum(axis=1, dtype=np.int64) / max(1, per_frame)


class SignalTrack:
    """Per-frame signals of a stream of tiny frames, plus a ring buffer of the most recent frames.

    ``len(track)`` counts frames whose signals are computed; ``pushed`` counts frames received. Call
    ``flush`` to compute the signals of frames still waiting for a full block.
    """

    def __init__(self, keep_frames: int = 96, lag: int = GRADUAL_LAG, block: int = BLOCK) -> None:
        self.lag = lag
        self.block = block
        # The ring must hold a block being computed plus ``lag`` frames before it.
        self.keep_frames = max(keep_frames, lag + 2) + block
        self._ring: np.ndarray | None = None
        self._hist_ring: np.ndarray = np.zeros((0, 64), np.float32)
        self.pushed = 0
        self._n = 0  # frames with signals
        # float64, as the detector compares them (``arrays`` hands out float32 copies).
        self._signals = {name: np.zeros(1024) for name in SIGNALS}

    def __len__(self) -> int:
        return self._n

    @property
    def first_index(self) -> int:
        """Index of the oldest frame still in the ring buffer."""
        return max(0, self.pushed - self.keep_frames + self.block)

    def push(self, frame: np.ndarray) -> None:
        """Add the next frame (HxWx3 uint8); its signals are computed once a block is complete."""
        if self._ring is None:
            self._ring = np.zeros((self.keep_frames, *frame.shape), np.uint8)
            self._hist_ring = np.zeros((self.keep_frames, 64), np.float32)
        self._ring[self.pushed % self.keep_frames] = frame
        self.pushed += 1
        if self.pushed - self._n >= self.block:
            self.flush()

    def flush(self) -> None:
        """Compute the signals of every pushed frame that has none yet."""
        start, end = self._n, self.pushed
        if end <= start or self._ring is None:
            return
        k, lag, ring = self.keep_frames, self.lag, self._ring
        lo = max(0, start - lag)
        stack = ring[np.arange(lo, end) % k]  # frames lo..end-1
        cur = stack[start - lo :]
        hists = colour_histograms(cur)
        self._hist_ring[np.arange(start, end) % k] = hists
        wide = stack.astype(np.int16)
        out: dict[str, np.ndarray] = {}
        diff = np.zeros(end - start)
        if start > 0:  # then the ring also holds the frame before ``start`` (lo < start)
            diff[:] = _mean_abs(wide[start - lo :] - wide[start - lo - 1 : end - lo - 1]) / 255.0
        else:  # the first frame has no predecessor
            diff[1:] = _mean_abs(wide[1:] - wide[:-1]) / 255.0
        out["diff"] = diff
        prev_hists = self._hist_ring[np.arange(start - 1, end - 1) % k]
        hist = 1.0 - np.minimum(hists, prev_hists).sum(axis=1)
        if start == 0:
            hist[0] = 0.0
        out["hist"] = hist
        far = np.zeros(end - start)
        blend = np.ones(end - start)
        hist_far = np.zeros(end - start)
        first = max(start, lag)  # frames with a frame ``lag`` back
        if first < end:
            now = wide[first - lo :]
            old = wide[first - lo - lag : end - lo - lag]
            mid = wide[first - lo - lag // 2 : end - lo - lag // 2]
            f = _mean_abs(now - old) / 255.0
            mix = _mean_abs(2 * mid - now - old) / (2 * 255.0)
            far[first - start :] = f
            blend[first - start :] = mix / (f + 0.02)
            old_hists = self._hist_ring[np.arange(first - lag, end - lag) % k]
            hist_far[first - start :] = 1.0 - np.minimum(hists[first - start :], old_hists).sum(axis=1)
        out["far"], out["blend"], out["hist_far"] = far, blend, hist_far
        h, w = cur.shape[1:3]  # brightness of the picture inside any letterbox or pillarbox bars
        grey = cur[:, h * 3 // 20 : h - h * 3 // 20, w // 10 : w - w // 10].astype(np.float32) @ _LUMA_WEIGHTS
        grey = grey.reshape(len(grey), -1)
        out["luma"] = grey.mean(axis=1).astype(np.float64) / 255.0
        out["luma_std"] = grey.std(axis=1).astype(np.float64) / 255.0
        if end > len(self._signals["diff"]):
            size = max(end, 2 * len(self._signals["diff"]))
            for name, arr in self._signals.items():
                grown = np.zeros(size)
                grown[: self._n] = arr[: self._n]
                self._signals[name] = grown
        for name, values in out.items():
            self._signals[name][start:end] = values
        self._n = end

    def __getattr__(self, name: str) -> np.ndarray:
        """``track.diff`` etc.: the signal of every frame computed so far (a read-only view)."""
        signals = self.__dict__.get("_signals")
        if signals is not None and name in signals:
            return signals[name][: self.__dict__["_n"]]
        raise AttributeError(name)

    def frame(self, index: int) -> np.ndarray:
        """A frame still in the ring buffer."""
        if not self.first_index <= index < self.pushed or self._ring is None:
            raise IndexError(f"frame {index} is no longer buffered (have {self.first_index}..)")
        return self._ring[index % self.keep_frames]

    def window(self, start: int, length: int) -> np.ndarray:
        """``length`` buffered frames from ``start``, repeating the edge frames where out of range."""
        idx = np.clip(np.arange(start, start + length), self.first_index, self.pushed - 1)
        assert self._ring is not None
        return self._ring[idx % self.keep_frames]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).astype(np.float32) for name in SIGNALS}
