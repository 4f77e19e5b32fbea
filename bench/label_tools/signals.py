"""Decode a video and compute cheap per-frame change signals for shot-boundary labelling.

Usage: python signals.py VIDEO OUT_DIR

Writes OUT_DIR/frames.npy (uint8, N x H x W x 3, RGB, decode order) and
OUT_DIR/signals.csv with one row per frame t:
  mad       mean |frame t - frame t-1| over RGB (0..255)
  hist      0.5 * L1 distance between normalised HSV histograms of t and t-1 (0..1)
  mad8      mean |frame t - frame t-8| (slow transitions)
  hist8     HSV histogram distance between t and t-8
  luma      mean luma of frame t (fades)
  lstd      standard deviation of luma of frame t (flat black/white frames)
and OUT_DIR/candidates.csv: merged spans of frames whose signals rank high.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import av
import cv2
import numpy as np


def decode(path: str) -> np.ndarray:
    frames = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
    return np.stack(frames)


def hsv_hist(frame: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return h / max(h.sum(), 1.0)


def compute(frames: np.ndarray) -> dict[str, np.ndarray]:
    n = len(frames)
    f = frames.astype(np.int16)
    hists = np.stack([hsv_hist(x) for x in frames])
    luma = np.array([cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in frames])
    out = {k: np.zeros(n, np.float32) for k in ("mad", "hist", "mad8", "hist8")}
    for t in range(1, n):
        out["mad"][t] = np.abs(f[t] - f[t - 1]).mean()
        out["hist"][t] = 0.5 * np.abs(hists[t] - hists[t - 1]).sum()
        if t >= 8:
            out["mad8"][t] = np.abs(f[t] - f[t - 8]).mean()
            out["hist8"][t] = 0.5 * np.abs(hists[t] - hists[t - 8]).sum()
    out["luma"] = luma.mean(axis=(1, 2))
    out["lstd"] = luma.std(axis=(1, 2))
    return out


def candidates(sig: dict[str, np.ndarray], top: int = 400, pad: int = 2) -> list[tuple[int, int, str]]:
    """Union of the top-`top` frames by each signal, plus dark/flat frames, merged into spans."""
    n = len(sig["mad"])
    flags: dict[int, set[str]] = {}
    for key in ("mad", "hist", "mad8", "hist8"):
        for t in np.argsort(-sig[key])[:top]:
            flags.setdefault(int(t), set()).add(key)
    # local peaks of mad relative to its neighbourhood (catches cuts between similar shots)
    mad = sig["mad"]
    for t in range(1, n):
        lo, hi = max(1, t - 6), min(n, t + 7)
        nb = np.delete(mad[lo:hi], t - lo)
        if mad[t] > 3.0 * max(np.median(nb), 1.0) and mad[t] > 6:
            flags.setdefault(t, set()).add("peak")
    for t in range(n):
        if sig["luma"][t] < 20 or sig["luma"][t] > 235 or sig["lstd"][t] < 6:
            flags.setdefault(t, set()).add("flat")
    spans: list[tuple[int, int, str]] = []
    for t in sorted(flags):
        a, b = max(0, t - pad), min(n - 1, t + pad)
        if spans and a <= spans[-1][1] + 1:
            s0, s1, tags = spans[-1]
            spans[-1] = (s0, max(s1, b), ",".join(sorted(set(tags.split(",")) | flags[t])))
        else:
            spans.append((a, b, ",".join(sorted(flags[t]))))
    return spans


def main() -> None:
    video, out_dir = sys.argv[1], Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = decode(video)
    np.save(out_dir / "frames.npy", frames)
    sig = compute(frames)
    keys = ["mad", "hist", "mad8", "hist8", "luma", "lstd"]
    with open(out_dir / "signals.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", *keys])
        for t in range(len(frames)):
            w.writerow([t, *(f"{sig[k][t]:.4f}" for k in keys)])
    spans = candidates(sig)
    with open(out_dir / "candidates.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["start", "end", "signals"])
        w.writerows(spans)
    print(f"frames={len(frames)} shape={frames.shape[1:]} candidate_spans={len(spans)}")


if __name__ == "__main__":
    main()
