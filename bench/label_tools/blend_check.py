"""Look for cross-fade (dissolve/fade) frames: is frame t a linear mix of frames t-k and t+k?

Usage: python blend_check.py OUT_DIR [CUTS_TXT]

For every t and k in 1..4, fit x_t ~ a*x_{t-k} + (1-a)*x_{t+k} (least squares, a in [0, 1]) and compare the
residual with the best single-endpoint error min(|x_t - x_{t-k}|, |x_t - x_{t+k}|). A dissolve frame is
explained much better by the mix (ratio < 0.45) with 0.15 < a < 0.85 and the two endpoints differ a lot.
Prints the frames flagged as mixes. With CUTS_TXT (one frame index a line) it also prints, for each hard cut
c, the mix statistics of frames c-1 and c (to show that no frame at a cut is blended).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def mix_stats(f: np.ndarray, t: int, k: int) -> tuple[float, float, float]:
    """Return (alpha, mix_residual / best_endpoint_error, endpoint_distance) as mean-abs values."""
    a, b, x = f[t - k], f[t + k], f[t]
    d = a - b
    denom = float((d * d).sum())
    if denom < 1e-6:
        return 0.5, 1.0, 0.0
    alpha = float(np.clip(((x - b) * d).sum() / denom, 0.0, 1.0))
    res = np.abs(x - (alpha * a + (1 - alpha) * b)).mean()
    best = min(np.abs(x - a).mean(), np.abs(x - b).mean())
    return alpha, float(res / max(best, 1e-6)), float(np.abs(d).mean())


def main() -> None:
    out_dir = Path(sys.argv[1])
    f = np.load(out_dir / "frames.npy").astype(np.float32)
    n = len(f)
    flagged = []
    for t in range(4, n - 4):
        for k in (1, 2, 3, 4):
            alpha, ratio, dist = mix_stats(f, t, k)
            if 0.15 < alpha < 0.85 and ratio < 0.45 and dist > 12:
                flagged.append((t, k, alpha, ratio, dist))
                break
    print(f"frames flagged as mixes: {len(flagged)}")
    for t, k, alpha, ratio, dist in flagged:
        print(f"  t={t} k={k} alpha={alpha:.2f} ratio={ratio:.2f} endpoint_dist={dist:.1f}")
    if len(sys.argv) > 2:
        cuts = [int(x) for x in Path(sys.argv[2]).read_text().split()]
        print("hard cuts: mix stats of frames c-1 and c w.r.t. (c-2, c+1), k=1 around each")
        worst = []
        for c in cuts:
            if c < 3 or c > n - 3:
                continue
            s = [mix_stats(f, t, 1) for t in (c - 1, c)]
            mixed = [t for t, (al, r, d) in zip((c - 1, c), s, strict=True) if 0.15 < al < 0.85 and r < 0.6]
            worst.append((c, s, mixed))
        bad = [w for w in worst if w[2]]
        print(f"  cuts checked: {len(worst)}; cuts with a mixed frame: {len(bad)}")
        for c, s, mixed in bad:
            print(f"  cut {c}: mixed frames {mixed} stats {[tuple(round(v, 2) for v in x) for x in s]}")


if __name__ == "__main__":
    main()
