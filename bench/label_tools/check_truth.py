"""Audit a shot-transition truth file against the video it describes.

Usage: python check_truth.py TRUTH_JSON VIDEO

Checks: frame count; transitions sorted, in range, non-overlapping, with a known kind; every cut is the
local maximum (frames c-3..c+3) of the frame difference or, where fast action makes the frame before the cut
differ as much, of the HSV-histogram distance (signals.py's two cut signals), and neither frame c-1 nor c is
a linear mix of its neighbours (so a short dissolve was not mislabelled as a cut); every fade is next to a
black (or white) frame and its brightness moves towards it, or (a dip: fade-out, short black or white
plateau, then fade-in or cut-in, labelled as one fade) holds a flat frame darker (or brighter) than the
frames just outside the span. Flat: the centre of the picture (the middle half both ways, so letterbox bars
do not count) has a luma standard deviation under 4. Exits non-zero on failure; prints one line per problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from blend_check import mix_stats
from signals import decode, hsv_hist

KINDS = {"cut", "dissolve", "fade"}


def main() -> None:
    truth = json.loads(Path(sys.argv[1]).read_text())
    frames = decode(sys.argv[2])
    n = len(frames)
    f = frames.astype(np.float32)
    mad = np.zeros(n, np.float32)
    mad[1:] = np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))
    luma = f.mean(axis=(1, 2, 3))
    h, w = frames.shape[1:3]
    centre = f[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean(axis=3)
    flat = centre.std(axis=(1, 2)) < 4
    problems = []
    if truth["frame_count"] != n:
        problems.append(f"frame_count {truth['frame_count']} != decoded {n}")
    prev_end = -1
    counts = dict.fromkeys(sorted(KINDS), 0)
    for t in truth["transitions"]:
        kind, s, e = t["kind"], t["start_frame"], t["end_frame"]
        if kind not in KINDS:
            problems.append(f"{s}: unknown kind {kind}")
            continue
        counts[kind] += 1
        if not (0 <= s <= e < n) or s <= prev_end:
            problems.append(f"{s}-{e}: out of range, unsorted or overlapping (previous end {prev_end})")
        prev_end = e
        if kind == "cut":
            if s != e:
                problems.append(f"cut {s}: start_frame != end_frame")
            lo, hi = max(1, s - 3), min(n, s + 4)
            if mad[s] < mad[lo:hi].max():
                hists = {t: hsv_hist(frames[t]) for t in range(lo - 1, hi)}
                hist = [0.5 * float(np.abs(hists[t] - hists[t - 1]).sum()) for t in range(lo, hi)]
                if hist[s - lo] < max(hist):
                    diffs = mad[lo:hi].round(1).tolist()
                    problems.append(
                        f"cut {s}: not the local maximum of the frame difference ({diffs})"
                        f" nor of the histogram distance ({np.round(hist, 2).tolist()})"
                    )
            if 2 <= s <= n - 2:
                for x in (s - 1, s):
                    alpha, ratio, _ = mix_stats(f, x, 1)
                    if 0.15 < alpha < 0.85 and ratio < 0.6:
                        problems.append(f"cut {s}: frame {x} looks like a mix (alpha={alpha:.2f})")
        elif kind == "fade":
            before, after = luma[max(0, s - 1)], luma[min(n - 1, e + 1)]
            out_ok = after < 5 and luma[e] < luma[s]  # fade-out to black
            in_ok = before < 5 and luma[s] < luma[e]  # fade-in from black
            white_ok = min(before, after) > 235  # to/from white
            inner = [t for t in range(s, e + 1) if flat[t]]
            dip_ok = any(luma[t] < min(before, after) or luma[t] > max(before, after) for t in inner)
            if not (out_ok or in_ok or white_ok or dip_ok):
                span = f"[{luma[s]:.1f} .. {luma[e]:.1f}]"
                problems.append(f"fade {s}-{e}: luma {before:.1f} {span} {after:.1f}")
    print(f"decoded frames: {n}; transitions: {counts}")
    for p in problems:
        print("PROBLEM", p)
    if problems:
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
